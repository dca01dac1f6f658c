"""The report as one self-contained HTML page: gate, case table with filters, waterfalls, latencies.

Drawn from the JSON report's data (``ConformanceReport.to_json``), never from logs. Everything is
inline — CSS, the script for the filters and the charts (plain SVG, drawn here) — so the file opens
from an artifact download with no network. A case's waterfall and event list are drawn when the
case is opened, from the phases computed in Python and embedded as JSON: a 1,000-case report stays
a few megabytes and opens in well under 2 s. Without JavaScript the case table still reads.
"""

from __future__ import annotations

import datetime
import html
import json
from typing import Any

from pytest_estuary.report.baseline import Baseline
from pytest_estuary.report.timeline import phases

__all__ = ["matrix_html", "report_html", "section_of", "timeline_data"]

VERDICTS = ("FAIL", "ERROR", "BLOCKED", "NON-STRICT", "SKIPPED", "PASS")
SECTIONS = ("CONN", "WIRE", "TEXT", "LK", "WS", "SEL", "ERR", "LIFE", "EXPLORE")
PAYLOAD_LIMIT = 300  # characters of one event's payload in the event list

CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--error:#8250df;--blocked:#bc4c00;--nonstrict:#9a6700;--skipped:#57606a;
--line:#d0d7de;--soft:#f6f8fa;font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:14px;color:#1f2328}
body{margin:0 auto;max-width:1200px;padding:16px}h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:24px 0 8px}
.gate{display:inline-block;padding:4px 12px;border-radius:6px;color:#fff;font-weight:700;font-size:18px}
.gate.pass{background:var(--pass)}.gate.fail{background:var(--fail)}
.v{display:inline-block;min-width:74px;text-align:center;border-radius:4px;color:#fff;font-weight:600;font-size:12px;
padding:1px 4px}.v-PASS{background:var(--pass)}.v-FAIL{background:var(--fail)}.v-ERROR{background:var(--error)}
.v-BLOCKED{background:var(--blocked)}.v-NON-STRICT{background:var(--nonstrict)}.v-SKIPPED{background:var(--skipped)}
.v-none{background:#fff;color:#57606a;border:1px dashed var(--line)}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:8px 0}dl.meta dt{color:#57606a}
dl.meta dd{margin:0}.diag{border-left:4px solid var(--error);background:#fbefff;padding:6px 10px}
.counts span{margin-right:10px}table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);
padding:4px 6px;text-align:left;vertical-align:top}th{background:var(--soft);position:sticky;top:0}
tr.case{cursor:pointer}tr.case:hover{background:var(--soft)}td.num{text-align:right;font-variant-numeric:tabular-nums}
.filters{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:8px 0}
.filters button{border:1px solid var(--line);background:#fff;border-radius:12px;padding:2px 10px;cursor:pointer}
.filters button[aria-pressed=false]{opacity:.45;text-decoration:line-through}
.filters input{padding:4px 8px;border:1px solid var(--line);border-radius:6px;min-width:260px}
pre{white-space:pre-wrap;background:var(--soft);padding:8px;border-radius:6px;margin:4px 0;font-size:12px}
.detail td{background:#fff;padding:8px 12px 16px}.events td{font-size:12px;font-family:ui-monospace,monospace}
.sent{color:#0969da}.received{color:#1a7f37}.note{color:#57606a}.up{color:var(--fail)}.down{color:var(--pass)}
svg text{font-size:11px;font-family:system-ui,sans-serif}.muted{color:#57606a}.problems li{margin:2px 0}
td.cell{font-size:12px}td.cell .v{margin-right:4px}
"""

SCRIPT = """
(function(){
const rows=[...document.querySelectorAll('tbody.case-group')];
const off={verdict:new Set(),section:new Set()};
const search=document.getElementById('search');const shown=document.getElementById('shown');
const data=JSON.parse(document.getElementById('timelines').textContent);
const NS='http://www.w3.org/2000/svg';
function el(tag,attrs,text,svg){const e=svg?document.createElementNS(NS,tag):document.createElement(tag);
 for(const k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}
function s(tag,attrs,text){return el(tag,attrs,text,true);}
function arrow(dir){return dir==='sent'?'\\u2192 ':dir==='received'?'\\u2190 ':'\\u00b7 ';}
function waterfall(d){
 const W=760,L=150,ROW=18,plot=W-L-10;let span=0.05;
 for(const e of d.events)span=Math.max(span,e[0]);for(const p of d.phases)span=Math.max(span,p[2]||0);span*=1.05;
 const x=t=>(L+plot*t/span).toFixed(1);
 const svg=s('svg',{class:'waterfall',role:'img','aria-label':'timeline of the case',width:W});
 const axis=s('g');svg.appendChild(axis);let y=18;
 for(const [name,start,end,by] of d.phases){
  svg.appendChild(s('text',{x:4,y:y+12},name));
  if(end===null){
   const r=s('rect',{class:'phase open',x:x(start),y:y+2,width:Math.max(x(span)-x(start),2),height:12,
    fill:'#cf222e',opacity:.35});
   r.appendChild(s('title',{},name+': started at '+start.toFixed(3)+' s, never ended'));svg.appendChild(r);
   svg.appendChild(s('text',{x:+x(start)+4,y:y+12,fill:'#cf222e'},'no answer: stalled here'));
  }else{
   const w=Math.max(x(end)-x(start),2);
   const r=s('rect',{class:'phase',x:x(start),y:y+2,width:w,height:12,fill:'#0969da'});
   r.appendChild(s('title',{},name+': '+start.toFixed(3)+' \\u2192 '+end.toFixed(3)+' s ('+by+')'));svg.appendChild(r);
   svg.appendChild(s('text',{x:+x(start)+w+4,y:y+12},Math.round((end-start)*1000)+' ms'));
  }
  y+=ROW;}
 if(d.phases.length)y+=6;
 for(const peer of new Set(d.events.map(e=>e[2]))){
  svg.appendChild(s('text',{x:4,y:y+12},peer.slice(0,24)));
  svg.appendChild(s('line',{x1:L,x2:W-10,y1:y+8,y2:y+8,stroke:'#d0d7de'}));
  for(const e of d.events){if(e[2]!==peer)continue;
   const colour=e[1]==='sent'?'#0969da':e[1]==='received'?'#1a7f37':'#57606a';
   const c=s('circle',{class:'tick',cx:x(e[0]),cy:y+8,r:4,fill:colour});
   c.appendChild(s('title',{},e[0].toFixed(3)+' s '+e[1]+' '+e[3]));svg.appendChild(c);}
  y+=ROW;}
 for(let i=0;i<6;i++){const t=span*i/5;
  axis.appendChild(s('line',{x1:x(t),x2:x(t),y1:4,y2:y,stroke:'#eaeef2'}));
  axis.appendChild(s('text',{x:x(t),y:y+12,'text-anchor':'middle'},t.toFixed(2)+' s'));}
 svg.setAttribute('height',y+18);svg.setAttribute('viewBox','0 0 '+W+' '+(y+18));return svg;}
function events(d){
 const box=el('details',{class:'events-box'});box.appendChild(el('summary',{},'Events on the wire'));
 const table=el('table',{class:'events'});const head=el('tr');
 for(const h of ['t (s)','peer','event','payload'])head.appendChild(el('th',{},h));
 table.appendChild(el('thead')).appendChild(head);const body=table.appendChild(el('tbody'));
 for(const e of d.events){const tr=body.appendChild(el('tr',{class:e[1]}));
  tr.appendChild(el('td',{class:'num'},e[0].toFixed(3)));tr.appendChild(el('td',{},e[2]));
  tr.appendChild(el('td',{},arrow(e[1])+e[3]));tr.appendChild(el('td',{},e[4]));}
 box.appendChild(table);return box;}
function draw(detail){const box=detail.querySelector('div.timeline');
 if(!box||box.childElementCount)return;const d=data[box.dataset.timeline];if(!d)return;
 box.appendChild(waterfall(d));box.appendChild(events(d));}
function apply(){const q=(search.value||'').trim().toLowerCase();let n=0;
 for(const g of rows){const ok=!off.verdict.has(g.dataset.verdict)&&!off.section.has(g.dataset.section)
  &&(!q||g.dataset.text.includes(q));g.hidden=!ok;if(ok)n++;}
 shown.textContent=n+' of '+rows.length+' cases shown';}
for(const b of document.querySelectorAll('.filters button[data-kind]')){
 b.addEventListener('click',()=>{const set=off[b.dataset.kind];const v=b.dataset.value;
  if(set.has(v)){set.delete(v);b.setAttribute('aria-pressed','true');}
  else{set.add(v);b.setAttribute('aria-pressed','false');}apply();});}
search.addEventListener('input',apply);
function toggle(r,show){const d=r.nextElementSibling;d.hidden=show===undefined?!d.hidden:!show;
 r.setAttribute('aria-expanded',String(!d.hidden));if(!d.hidden)draw(d);}
const cases=document.getElementById('cases');
cases.addEventListener('click',ev=>{const r=ev.target.closest('tr.case');if(r)toggle(r);});
cases.addEventListener('keydown',ev=>{const r=ev.target.closest('tr.case');
 if(r&&(ev.key==='Enter'||ev.key===' ')){ev.preventDefault();toggle(r);}});
function fromHash(){const r=location.hash&&document.getElementById(location.hash.slice(1));
 if(r&&r.classList.contains('case')){toggle(r,true);r.scrollIntoView();}}
window.addEventListener('hashchange',fromHash);fromHash();
apply();
})();
"""


def section_of(case_id: str) -> str:
    """The case's section: ``LK-5`` → ``LK``, ``EXPLORE[LK-5]`` → ``EXPLORE``."""
    return case_id.split("[", 1)[0].split("-", 1)[0]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _verdict(verdict: str | None) -> str:
    if verdict is None:
        return '<span class="v v-none">none</span>'
    return f'<span class="v v-{_e(verdict)}">{_e(verdict)}</span>'


def _page(title: str, body: str, *, script: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<link rel=icon href="data:,">'  # no favicon request: the page makes none at all
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>\n"
    )


def _when(timestamp: object) -> str:
    if not isinstance(timestamp, (int, float)):
        return "?"
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _header(data: dict[str, Any], baseline: Baseline | None) -> str:
    run, summary = data["run"], data["summary"]
    gate = str(summary.get("gate", "fail"))
    counts = " ".join(f"<span>{_verdict(v)} {n}</span>" for v, n in summary.get("counts", {}).items() if n)
    client = run.get("client")
    meta = [
        ("Mode", run.get("mode")),
        ("Target", run.get("target")),
        ("LiveKit", run.get("livekit_source")),
        ("Client", f"{client['name']} {client['version']} (--estuary-client {client['option']})" if client else None),
        ("Strict", "yes (NON-STRICT fails the gate)" if run.get("strict") else "no"),
        ("Started", _when(run.get("started_at"))),
        ("Duration", f"{run['finished_at'] - run['started_at']:.1f} s" if run.get("finished_at") else None),
        ("Baseline", f"{baseline.path} (run {_when(baseline.started_at)})" if baseline else None),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta if v is not None)
    preflight = run.get("preflight") or None
    pre = ""
    if preflight:
        if preflight.get("ok"):
            pre = f"<p class=muted id=preflight>Preflight: {_e(preflight.get('summary', 'ok'))}</p>"
        else:
            diagnosis = _e(preflight.get("diagnosis"))
            pre = f"<p class=diag id=preflight><b>Preflight: the target cannot be tested.</b> {diagnosis}</p>"
    return (
        f'<h1>Estuary conformance</h1><p><span class="gate {_e(gate)}" id=gate>Gate: {_e(gate.upper())}</span> '
        f'<span class=counts id=counts data-executed="{_e(summary.get("executed", 0))}">'
        f"{counts or 'no cases'}</span></p>"
        f"{pre}<dl class=meta>{rows}</dl>"
    )


def _problems(cases: list[dict[str, Any]], strict: bool) -> str:
    order = ("ERROR", "FAIL", "NON-STRICT") if strict else ("ERROR", "FAIL")
    bad = [c for verdict in order for c in cases if c["verdict"] == verdict]
    if not bad:
        return ""
    items = "".join(
        f'<li>{_verdict(c["verdict"])} <a href="#{_anchor(c)}">{_e(c["id"])}</a> {_e(_summary(c))}</li>'
        for c in bad[:10]
    )
    more = f"<li>… and {len(bad) - 10} more in the table</li>" if len(bad) > 10 else ""
    return f"<h2>Look at these first</h2><ul class=problems>{items}{more}</ul>"


def _summary(case: dict[str, Any]) -> str:
    lines = [line.strip() for line in str(case.get("reason") or "").splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def _anchor(case: dict[str, Any]) -> str:
    return "case-" + "".join(ch if ch.isalnum() else "-" for ch in str(case["nodeid"]))


def _filters(cases: list[dict[str, Any]]) -> str:
    verdicts = [v for v in VERDICTS if any(c["verdict"] == v for c in cases)]
    present = {section_of(c["id"]) for c in cases}
    sections = [s for s in SECTIONS if s in present] + sorted(present - set(SECTIONS))
    vb = "".join(
        f'<button type=button data-kind=verdict data-value="{_e(v)}" aria-pressed=true>{_verdict(v)}</button>'
        for v in verdicts
    )
    sb = "".join(
        f'<button type=button data-kind=section data-value="{_e(s)}" aria-pressed=true>{_e(s)}</button>'
        for s in sections
    )
    return (
        f"<div class=filters><span class=muted>Verdict</span>{vb}</div>"
        f"<div class=filters><span class=muted>Section</span>{sb}"
        '<input id=search type=search placeholder="search ID, requirement, test, reason" aria-label=search>'
        "<span id=shown class=muted></span></div>"
    )


def _change(now: float, before: float | None) -> str:
    if before is None:
        return ""
    delta = now - before
    ratio = f" ({delta / before:+.0%})" if before > 0 else ""
    klass = "up" if delta > 0 else "down"
    return f'<span class="{klass}">{delta:+.3f} s{ratio}</span>'


def _case_rows(cases: list[dict[str, Any]], baseline: Baseline | None) -> str:
    groups = []
    for case in cases:
        test = str(case["nodeid"]).rsplit("::", 1)[-1]
        text = " ".join([case["id"], case.get("requirement", ""), test, str(case.get("reason") or "")]).lower()
        change = ""
        if baseline is not None:
            before = baseline.case(case["nodeid"])
            if before.verdict_before is None:
                change = "<td class=muted>new</td>"
            else:
                was = "" if before.verdict_before == case["verdict"] else f"was {_verdict(before.verdict_before)} "
                change = f"<td>{was}{_change(float(case['duration']), before.duration_before)}</td>"
        groups.append(
            f'<tbody class=case-group data-id="{_e(case["id"])}" data-verdict="{_e(case["verdict"])}" '
            f'data-section="{_e(section_of(case["id"]))}" '
            f'data-text="{_e(text)}"><tr class=case id="{_anchor(case)}" tabindex=0 aria-expanded=false>'
            f"<td><b>{_e(case['id'])}</b><br><span class=muted>{_e(test)}</span></td><td>{_e(case['level'])}</td>"
            f"<td>{_e(case.get('requirement', ''))}</td><td>{_verdict(case['verdict'])}</td>"
            f"<td>{_e(case.get('blocked_by') or '')}</td><td class=num>{float(case['duration']):.2f}</td>{change}</tr>"
            f"<tr class=detail hidden><td colspan={7 if baseline else 6}>{_detail(case, baseline)}</td></tr></tbody>"
        )
    head = "<th>Change since baseline</th>" if baseline else ""
    return (
        "<table id=cases><thead><tr><th>Case</th><th>Level</th><th>Requirement</th><th>Verdict</th>"
        f"<th>Blocked by</th><th>Time (s)</th>{head}</tr></thead>{''.join(groups)}</table>"
    )


def _detail(case: dict[str, Any], baseline: Baseline | None) -> str:
    parts = [f"<p><b>{_e(case['id'])}</b> ({_e(case['level'])}): {_e(case.get('requirement', ''))}</p>"]
    parts.append(f"<p class=muted>{_e(case['nodeid'])}</p>")
    if case.get("reason"):
        parts.append(f"<pre class=reason>{_e(case['reason'])}</pre>")
    timings = case.get("timings") or {}
    if timings:
        cells = []
        for name, value in timings.items():
            moved = baseline.timing(case["nodeid"], name, float(value)) if baseline else None
            before = moved.before if moved else None
            cells.append(f"<li>{_e(name)}: {float(value):.3f} s {_change(float(value), before)}</li>")
        parts.append(f"<p>Timings:</p><ul>{''.join(cells)}</ul>")
    if case.get("steps"):
        parts.append(_steps(case["steps"], case.get("replay")))
    if case.get("timeline"):  # drawn by the page's script when the case is opened (see timeline_data)
        parts.append(f'<div class=timeline data-timeline="{_anchor(case)}"></div>')
    elif case["verdict"] not in ("SKIPPED",):
        parts.append("<p class=muted>No protocol events were recorded for this case.</p>")
    return "".join(parts)


def _steps(steps: list[dict[str, Any]], replay: str | None) -> str:
    items = []
    for step in steps:
        traffic = [f"→ {x.get('event')}" for x in step.get("sent", [])] + [
            f"← {x.get('event')}" for x in step.get("received", [])
        ]
        t = step.get("t")
        when = f" <span class=muted>at {float(t):.3f} s</span>" if isinstance(t, (int, float)) else ""
        extra = f" <span class=muted>{_e(', '.join(traffic))}</span>" if traffic else ""
        items.append(f"<li>{_e(step.get('action', '?'))}{when}{extra}</li>")
    line = f"<p>Replay: <code>{_e(replay)}</code></p>" if replay else ""
    return f"<p>Steps (shrunk):</p><ol class=steps>{''.join(items)}</ol>{line}"


def timeline_data(timeline: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page's script draws for one case: its phases (``[name, start, end or null,
    ended by]``) and events (``[t, direction, peer, event, payload text]``)."""
    events = []
    for entry in timeline:
        payload = json.dumps(entry.get("payload"), ensure_ascii=False)
        if len(payload) > PAYLOAD_LIMIT:
            payload = payload[: PAYLOAD_LIMIT - 1] + "…"
        events.append(
            [float(entry.get("t", 0)), str(entry.get("dir")), str(entry.get("peer")), str(entry.get("event")), payload]
        )
    phases_found = [[p.name, p.start, p.end, p.ended_by] for p in phases(timeline)]
    return {"phases": phases_found, "events": events}


def _json_for_script(value: object) -> str:
    """JSON that cannot end its <script> element early (every "<" escaped)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _latency(cases: list[dict[str, Any]], baseline: Baseline | None) -> str:
    """Each timing across the run: a bar per case (scaled to that timing's largest), and with a
    baseline the change."""
    by_name: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for case in cases:
        for name, value in (case.get("timings") or {}).items():
            by_name.setdefault(name, []).append((case, float(value)))
    if not by_name:
        return "<h2 id=latency>Latency</h2><p class=muted>No case recorded a timing.</p>"
    rows = []
    for name in sorted(by_name):
        values = by_name[name]
        top = max(v for _, v in values) or 1.0
        for index, (case, value) in enumerate(values):
            moved = baseline.timing(case["nodeid"], name, value) if baseline else None
            label = f"<td rowspan={len(values)}><b>{_e(name)}</b></td>" if index == 0 else ""
            rows.append(
                f"<tr>{label}<td>{_e(case['id'])}</td><td class=num>{value:.3f}</td><td><svg width=310 height=12 "
                f'role=img aria-label="{value:.3f} s">'
                f'<rect x=0 y=1 width="{max(300 * value / top, 1):.1f}" height=10 fill="#0969da"/>'
                f"</svg></td>"
                + (f"<td>{_change(value, moved.before if moved else None)}</td>" if baseline else "")
                + "</tr>"
            )
    head = "<th>change since baseline</th>" if baseline else ""
    return (
        "<h2 id=latency>Latency</h2><table class=latency><thead><tr><th>timing</th><th>case</th><th>seconds</th>"
        f"<th></th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def report_html(data: dict[str, Any], baseline: Baseline | None = None) -> str:
    """The page for one report (the dict of ``ConformanceReport.to_json``)."""
    cases: list[dict[str, Any]] = data["cases"]
    body = (
        _header(data, baseline)
        + _problems(cases, bool(data["run"].get("strict")))
        + _verdict_changes(cases, baseline)
        + "<h2>Cases</h2><p class=muted>Verdicts: PASS · FAIL (a MUST broken) · BLOCKED (a step of another "
        "requirement failed first) · NON-STRICT (a SHOULD/INFO broken) · SKIPPED · ERROR (the environment or the "
        "harness broke). Click a case for its reason and timeline.</p>"
        + _filters(cases)
        + _case_rows(cases, baseline)
        + _latency(cases, baseline)
    )
    timelines = {_anchor(case): timeline_data(case["timeline"]) for case in cases if case.get("timeline")}
    embedded = f"<script type=application/json id=timelines>{_json_for_script(timelines)}</script>"
    return _page("Estuary conformance", body + embedded, script=SCRIPT)


def _verdict_changes(cases: list[dict[str, Any]], baseline: Baseline | None) -> str:
    if baseline is None:
        return ""
    by_node = {c["nodeid"]: c for c in cases}
    moved = [
        (by_node[node], before)
        for node, before, _ in baseline.verdict_changes((c["nodeid"], c["verdict"]) for c in cases)
    ]
    if not moved:
        return "<p id=changes>No verdict changed since the baseline.</p>"
    items = "".join(
        f'<li><a href="#{_anchor(c)}">{_e(c["id"])}</a> {_verdict(before)} → {_verdict(c["verdict"])}</li>'
        for c, before in moved
    )
    return f"<h2>Changed since the baseline</h2><ul id=changes>{items}</ul>"


def matrix_html(matrix: dict[str, Any]) -> str:
    """The client matrix (``build_matrix``) as a coloured cases by clients table with each cell's reason."""
    columns = matrix["columns"]
    summary = "".join(
        f"<tr><td>{_e(c['label'])}</td><td><span class='gate {_e(c['gate'] or 'fail')}'>"
        f"{_e(str(c['gate']).upper())}</span></td><td>"
        + " ".join(f"{_verdict(v)} {n}" for v, n in (c.get("counts") or {}).items() if n)
        + f"</td><td>{_e(c['source'])}</td></tr>"
        for c in columns
    )
    head = "".join(f"<th>{_e(c['label'])}</th>" for c in columns)
    rows = []
    for row in matrix["rows"]:
        cells = []
        for column in columns:
            cell = row["cells"].get(column["label"])
            if cell is None:
                cells.append(f"<td class=cell>{_verdict(None)}</td>")
                continue
            why = "" if cell["verdict"] == "PASS" else str(cell.get("reason") or "")
            short = why if len(why) <= 160 else why[:159] + "…"
            cells.append(f'<td class=cell title="{_e(why)}">{_verdict(cell["verdict"])}{_e(short)}</td>')
        rows.append(
            f"<tr data-id='{_e(row['id'])}' data-section='{_e(section_of(row['id']))}'><td><b>{_e(row['id'])}</b><br>"
            f"<span class=muted>{_e(row['test'])}</span></td><td>{_e(row['level'])}</td>{''.join(cells)}</tr>"
        )
    body = (
        "<h1>Estuary client matrix</h1><table id=clients><thead><tr><th>client</th><th>gate</th><th>verdicts</th>"
        f"<th>report</th></tr></thead><tbody>{summary}</tbody></table><h2>Cases by client</h2>"
        f"<table id=matrix><thead><tr><th>case</th><th>level</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table>"
    )
    return _page("Estuary client matrix", body)

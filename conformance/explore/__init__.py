"""The stateful explorer (``--estuary-explore``): hypothesis drives a server through client action
sequences no case scripted, checks protocol.md's invariants after every step, and shrinks what breaks."""

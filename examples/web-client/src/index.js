// The browser SDK's public surface.
export { EstuaryClient } from "./client.js";
export { ErrorCode, EstuaryError } from "./errors.js";

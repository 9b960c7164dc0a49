/**
 * The keep-alive agent both API clients use (connections.ts for client-node, rest-client.ts
 * for the agent's REST client): a plain node:http(s) Agent that counts the connections it
 * opens, so tests and diagnostics can tell a reused connection from a new TCP connect and
 * TLS handshake. No client-node import: the agent's bundle stays small (docs/adr/0007).
 */
import http from 'node:http';
import https from 'node:https';

/** An HTTPS (`secure`) or HTTP agent with `options` that calls `onConnection` for each connection it opens. */
export function countingAgent(
  secure: boolean,
  options: https.AgentOptions,
  onConnection: () => void,
): http.Agent {
  const agent: http.Agent = secure ? new https.Agent(options) : new http.Agent(options);
  // The Agent opens every connection through this.createConnection; counting wraps it per instance.
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (...args: Parameters<http.Agent['createConnection']>) => {
    onConnection();
    return create(...args);
  };
  return agent;
}

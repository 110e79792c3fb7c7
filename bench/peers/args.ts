// Command line shared by the Node peers: --port P --upstream http://127.0.0.1:O
export interface PeerArgs {
  port: number;
  upstream: URL;
}

export function peerArgs(argv: readonly string[] = process.argv.slice(2)): PeerArgs {
  const get = (name: string): string => {
    const i = argv.indexOf(name);
    const v = i >= 0 ? argv[i + 1] : undefined;
    if (!v) throw new Error(`usage: --port PORT --upstream http://HOST:PORT (missing ${name})`);
    return v;
  };
  const port = Number(get('--port'));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: bad port ${get('--port')}`);
  return { port, upstream: new URL(get('--upstream')) };
}

/** Stops cleanly on SIGTERM/SIGINT so the runner's stop() is quick. */
export function exitOnSignals(close: () => Promise<unknown> | void): void {
  const bye = (): void => {
    Promise.resolve(close()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', bye);
  process.once('SIGINT', bye);
}

#!/usr/bin/env node
// Exec probe for a Unix-socket program without a shell (the WAF sidecar's liveness/readiness):
// exit 0 when PATH accepts a connection within 2 s, else 1.   probe-socket.mjs PATH
import { connect } from 'node:net';

const path = process.argv[2];
if (!path) {
  process.stderr.write('usage: probe-socket.mjs SOCKET_PATH\n');
  process.exit(2);
}
const sock = connect(path);
const timer = setTimeout(() => process.exit(1), 2000);
sock.once('connect', () => {
  clearTimeout(timer);
  sock.destroy();
  process.exit(0);
});
sock.once('error', () => process.exit(1));

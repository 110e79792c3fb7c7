// A non-WebSocket Upgrade request (`Upgrade: h2c`, `foo` ...) is not switched to: it is answered
// as a plain request on a connection that closes after the response. Node's parser stops at the
// end of the headers of any Upgrade request and hands the raw socket over with the request
// stream already ended, so its body would be lost (forwarded as `content-length: 0`). This builds
// the request again with its body: exactly Content-Length bytes, from what Node read past the
// headers (`head`) and then the socket, with backpressure. A chunked body is refused (400): the
// framing would have to be decoded here a second time (docs/security.md, "Request bodies").
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The request to dispatch instead of `req`, or undefined when its body cannot be taken (chunked). */
export function upgradeAsRequest(req: IncomingMessage, socket: Duplex, head: Buffer): IncomingMessage | undefined {
  if (req.headers['transfer-encoding'] !== undefined) return undefined;
  const declared = Number(req.headers['content-length'] ?? '0');
  if (!(declared > 0)) return req;
  const msg = new IncomingMessage(socket as Socket);
  msg.httpVersionMajor = req.httpVersionMajor;
  msg.httpVersionMinor = req.httpVersionMinor;
  msg.httpVersion = req.httpVersion;
  msg.method = req.method;
  msg.url = req.url;
  msg.rawHeaders = req.rawHeaders;
  msg.headers = req.headers;
  let left = declared;
  const feed = (chunk: Buffer): void => {
    if (left <= 0 || chunk.length === 0) return;
    const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= part.length;
    // bytes past the body (a pipelined request) are dropped: the connection closes after the answer
    if (!msg.push(part)) socket.pause();
    if (left === 0) {
      socket.off('data', feed);
      socket.off('end', cut);
      msg.complete = true;
      msg.push(null);
    }
  };
  const cut = (): void => {
    if (left > 0) msg.destroy(new Error('aborted'));
  };
  // IncomingMessage's _read resumes the socket when the consumer wants more.
  socket.on('data', feed);
  socket.once('end', cut);
  socket.once('close', cut);
  feed(head);
  return msg;
}

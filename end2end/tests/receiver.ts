import * as http from 'node:http';
import { AddressInfo } from 'node:net';

/** A webhook receiver on 127.0.0.1 that records what it gets and answers 200. */
export class Receiver {
  received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  private server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      this.received.push({ headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"received":true}');
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/hooks`;
  }

  async stop() {
    // Herald keeps connections alive for reuse; close them too, or close() waits on them.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

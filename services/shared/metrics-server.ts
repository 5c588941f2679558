// A tiny HTTP listener that serves one Prometheus registry at /metrics, for every logkv
// process (broker, materializer, gateway). Anything else is a 404.
import { createServer } from "node:http";

export interface MetricsServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

export function serveMetrics(
  host: string,
  port: number,
  render: () => Promise<{ contentType: string; body: string }>,
): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    if (request.url !== "/metrics") {
      response.writeHead(404).end("see /metrics\n");
      return;
    }
    render().then(
      ({ contentType, body }) => response.writeHead(200, { "Content-Type": contentType }).end(body),
      () => response.writeHead(500).end(),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("metrics listener has no TCP address"));
        return;
      }
      resolve({
        host,
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

import { connect, createServer, type Socket } from "node:net";

export interface CuttingProxy {
  url: string;
  /** Connections cut so far. */
  readonly cuts: number;
  /**
   * Cuts the next chunk the target sends to a client: its first half reaches the client,
   * then the client's connection is closed cleanly (FIN, no reset), as when the server
   * process dies between two writes of a frame.
   */
  cutNext(): void;
  close(): Promise<void>;
}

/** A TCP proxy to `127.0.0.1:targetPort` that can cut a streaming response mid-frame. */
export async function startCuttingProxy(targetPort: number): Promise<CuttingProxy> {
  let armed = false;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  };
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    track(client);
    track(upstream);
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      if (!armed) {
        client.write(chunk);
        return;
      }
      armed = false;
      cuts++;
      client.end(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
      upstream.destroy();
    });
    upstream.on("end", () => client.end());
    upstream.on("close", () => client.end());
    client.on("close", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get cuts() {
      return cuts;
    },
    cutNext() {
      armed = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

import { createServer, type Socket } from "node:net";

/**
 * A loopback endpoint that cuts every request's connection without answering (as a REST
 * endpoint dying mid-request would), counting them, so a test can see how many attempts a
 * client made. `GET /count` is the one request it answers: the number of connections cut.
 */
export async function startConnectionDropper(): Promise<{ url: string; close(): Promise<void> }> {
  let cut = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    socket.once("data", (head) => {
      if (head.toString("latin1").startsWith("GET /count ")) {
        const body = String(cut);
        socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      cut++;
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

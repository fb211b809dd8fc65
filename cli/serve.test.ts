import { describe, expect, it } from "vitest";
import { brokerModes } from "../test/support/modes.js";
import { CliProcess, runCli } from "./testing/cli-process.js";

describe.each(brokerModes())("edge-fanout serve ($name)", (mode) => {
  it("runs the relay like npm start: serves, takes its settings from the environment or flags, drains on SIGTERM", async () => {
    const redis = mode.env().REDIS_URL;
    const flags = redis ? ["--redis", redis] : [];
    const serve = new CliProcess(["serve", "--port", "0", "--host", "127.0.0.1", ...flags], { FANOUT_LOG_PREFIX: mode.env().FANOUT_LOG_PREFIX });
    const [, port] = await serve.waitFor("stdout", /relay listening on http:\/\/localhost:(\d+) \((\w+) broker[;)]/);
    expect(serve.stdout).toContain(redis ? "(Redis broker" : "(embedded broker");
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    const published = await runCli(["publish", "a", "1", "--url", base]);
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout).channel).toBe("a");

    expect(await serve.kill("SIGTERM")).toBe(0);
    expect(serve.stdout).toContain("SIGTERM: draining");
  });
});

describe("edge-fanout serve, bad settings", () => {
  it("exits 2 naming the variable, as npm start does", async () => {
    const res = await runCli(["serve", "--port", "not-a-port", "--host", "127.0.0.1"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/configuration error: .*PORT/);
  });
});

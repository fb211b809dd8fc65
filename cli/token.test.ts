import { describe, expect, it } from "vitest";
import { relayFixture } from "../test/support/relay-harness.js";
import { SseClient, publish } from "../test/support/sse-client.js";
import { CliProcess, runCli } from "./testing/cli-process.js";

const SECRET = "cli-token-test-secret-0123456789abcdef";

function claims(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());
}

describe("edge-fanout token", () => {
  const { start } = relayFixture();

  it("mints a JWT the relay accepts for exactly its globs: subscribe and publish inside them, 403 outside", async () => {
    const r = await start({ FANOUT_JWT_SECRET: SECRET });
    const minted = await runCli(["token", "--subscribe", "user:42:*", "--subscribe", "news", "--publish", "chat:*", "--sub", "dev-1"], { FANOUT_JWT_SECRET: SECRET });
    expect(minted.code, minted.stderr).toBe(0);
    const token = minted.stdout.trim();
    expect(minted.stdout).toBe(`${token}\n`);
    const c = claims(token);
    expect(c).toMatchObject({ sub: "dev-1", fanout: { subscribe: ["user:42:*", "news"], publish: ["chat:*"] } });
    expect(c.fanout.admin).toBeUndefined();
    expect(c.exp - c.iat).toBe(3600);

    const auth = { Authorization: `Bearer ${token}` };
    const inside = await SseClient.open(`${r.base}/v1/events?channel=user:42:inbox&channel=news&pattern=user:42:*`, auth);
    await inside.waitReady();
    inside.close();
    for (const qs of ["channel=user:43:inbox", "pattern=user:*", "channel=chat:1"]) {
      const outside = await SseClient.open(`${r.base}/v1/events?${qs}`, auth);
      await outside.waitClosed();
      expect(outside.status, qs).toBe(403);
    }
    expect((await publish(r.base, { channel: "chat:1", data: 1 }, auth)).status).toBe(200);
    const refused = await publish(r.base, { channel: "news", data: 1 }, auth);
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe("forbidden_channel");

    // And through the CLI's own commands, with the token as their credential.
    const tail = new CliProcess(["tail", "user:42:*", "--url", r.base, "--token", token]);
    await tail.waitFor("stderr", /tail: connected/);
    expect((await runCli(["publish", "chat:2", "{}", "--url", r.base, "--key", token])).code).toBe(0);
    const outside = await runCli(["publish", "user:42:inbox", "{}", "--url", r.base, "--key", token]);
    expect(outside.code).toBe(1);
    expect(outside.stderr).toMatch(/^error: forbidden_channel \(HTTP 403\)/);
    const forbiddenTail = await runCli(["tail", "user:*", "--url", r.base, "--token", token]);
    expect(forbiddenTail.code).toBe(1);
    expect(forbiddenTail.stderr).toMatch(/^error: \S+ \(HTTP 403\)/m);
    expect(await tail.kill()).toBe(0);
  });

  it("--admin reads stats with names; --ttl sets exp; the secret comes from --secret too", async () => {
    const r = await start({ FANOUT_JWT_SECRET: SECRET });
    const admin = (await runCli(["token", "--admin", "--ttl", "15m", "--secret", SECRET])).stdout.trim();
    expect(claims(admin)).toMatchObject({ fanout: { admin: true, subscribe: [], publish: [] } });
    expect(claims(admin).exp - claims(admin).iat).toBe(900);
    const stats = await runCli(["stats", "--json", "--url", r.base, "--key", admin]);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout).channels).toEqual({});

    const plain = (await runCli(["token", "--subscribe", "*", "--secret", SECRET])).stdout.trim();
    const refused = await runCli(["stats", "--url", r.base, "--key", plain]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: admin_required \(HTTP 403\)/);
  });

  it("mints the info claim presence shows beside the sub", async () => {
    const minted = await runCli(["token", "--subscribe", "room:*", "--sub", "ann", "--info", '{"name":"Ann","color":"teal"}'], { FANOUT_JWT_SECRET: SECRET });
    expect(minted.code, minted.stderr).toBe(0);
    expect(claims(minted.stdout.trim())).toMatchObject({ sub: "ann", info: { name: "Ann", color: "teal" } });
  });

  it("refuses to mint without a secret, without any grant, or with a bad --ttl: one line, exit 2", async () => {
    for (const [args, message] of [
      [["token", "--subscribe", "a"], "no secret: pass --secret or set FANOUT_JWT_SECRET"],
      [["token", "--secret", SECRET], "the token would grant nothing: give --subscribe, --publish or --admin"],
      [["token", "--secret", SECRET, "--publish", "a", "--ttl", "soon"], '--ttl must be a positive duration like 90s, 15m, 1h or 7d, got "soon"'],
      [["token", "--secret", SECRET, "a:*"], 'unexpected argument "a:*" (globs go after --subscribe or --publish)'],
      [["token", "--secret", SECRET, "--subscribe", "a", "--info", "Ann"], `--info must be a JSON object, e.g. '{"name":"Ann"}'`],
      [["token", "--secret", SECRET, "--subscribe", "a", "--info", "[1]"], `--info must be a JSON object, e.g. '{"name":"Ann"}'`],
      [["token", "--secret", SECRET, "--subscribe", "a", "--info", JSON.stringify({ x: "y".repeat(1100) })], "--info must be at most 1024 bytes as JSON"],
    ] as const) {
      const res = await runCli([...args]);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stdout).toBe("");
      expect(res.stderr).toBe(`edge-fanout token: ${message} (see edge-fanout token --help)\n`);
    }
  });
});

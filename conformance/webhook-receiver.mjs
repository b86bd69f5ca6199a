// A webhook receiver for Portcullis' tests and benchmark: verifies every delivery with the
// reference Standard Webhooks library (npm `standardwebhooks`), records what it got, and
// answers as told (succeed, fail with 500, or hang past the sender's timeout).
//
//   node conformance/webhook-receiver.mjs            # prints {"port": N} once listening
//
// Endpoints are paths: deliveries to /hooks/<name> are checked against the secrets set for
// <name>. Control (JSON):
//   PUT  /_control/<name> {secrets: ["whsec_…", …], fail?: n, hang?: n, hang_ms?: ms}
//        every delivery must verify with EACH listed secret (two during a rotation); the
//        next n deliveries answer 500 (fail) or hang (hang) before the rest answer 204.
//   GET  /_control/<name>  → {received: [{id, timestamp, type, verified, status, at_ms}]}
//   GET  /_control/stats   → {total, unique, duplicates, unverified}
// Records: {id, timestamp, signatures, type, verified, status, at_ms, event_ms}.

import http from "node:http";
import { Webhook } from "standardwebhooks";

const endpoints = new Map();

function endpoint(name) {
  if (!endpoints.has(name)) {
    endpoints.set(name, { secrets: [], fail: 0, hang: 0, hangMs: 30000, received: [] });
  }
  return endpoints.get(name);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function json(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(value));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, "http://receiver");
  const body = await readBody(req);
  const parts = url.pathname.split("/").filter(Boolean);
  if (parts[0] === "_control" && parts[1] === "stats") {
    let total = 0;
    let unverified = 0;
    const ids = new Map();
    for (const e of endpoints.values()) {
      for (const r of e.received) {
        total += 1;
        if (!r.verified) unverified += 1;
        if (r.status >= 200 && r.status < 300) ids.set(r.id, (ids.get(r.id) || 0) + 1);
      }
    }
    const duplicates = [...ids.values()].filter((n) => n > 1).length;
    return json(res, 200, { total, unique: ids.size, duplicates, unverified });
  }
  if (parts[0] === "_control" && parts[1]) {
    const e = endpoint(parts[1]);
    if (req.method === "PUT") {
      const cfg = JSON.parse(body || "{}");
      e.secrets = cfg.secrets ?? e.secrets;
      e.fail = cfg.fail ?? 0;
      e.hang = cfg.hang ?? 0;
      e.hangMs = cfg.hang_ms ?? e.hangMs;
      return json(res, 200, { ok: true });
    }
    return json(res, 200, { received: e.received });
  }
  if (parts[0] !== "hooks" || !parts[1] || req.method !== "POST") {
    return json(res, 404, { error: "no such endpoint" });
  }
  const e = endpoint(parts[1]);
  const headers = {
    "webhook-id": req.headers["webhook-id"],
    "webhook-timestamp": req.headers["webhook-timestamp"],
    "webhook-signature": req.headers["webhook-signature"],
  };
  // Verified only when every configured secret verifies the delivery on its own.
  let verified = e.secrets.length > 0;
  let type = null;
  let eventTs = null;
  for (const secret of e.secrets) {
    try {
      const payload = new Webhook(secret).verify(body, headers);
      type = payload.type;
      eventTs = Date.parse(payload.timestamp);
    } catch (err) {
      verified = false;
    }
  }
  let status = verified ? 204 : 400;
  let hang = false;
  if (verified && e.hang > 0) {
    e.hang -= 1;
    hang = true;
  } else if (verified && e.fail > 0) {
    e.fail -= 1;
    status = 500;
  }
  const record = {
    id: headers["webhook-id"],
    timestamp: headers["webhook-timestamp"],
    signatures: (headers["webhook-signature"] || "").split(" ").length,
    type,
    verified,
    status: hang ? 0 : status,
    at_ms: Date.now(),
    // When the event happened (the body's timestamp), for the benchmark's latency.
    event_ms: eventTs,
  };
  e.received.push(record);
  if (hang) {
    setTimeout(() => {
      if (!res.writableEnded) json(res, 204, {});
    }, e.hangMs);
    return;
  }
  if (status === 204) {
    res.writeHead(204);
    return res.end();
  }
  return json(res, status, { error: status === 500 ? "told to fail" : "signature did not verify" });
});

server.keepAliveTimeout = 60000;
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});

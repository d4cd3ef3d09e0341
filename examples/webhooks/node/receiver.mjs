#!/usr/bin/env node
// A shop's or CRM's endpoint for fulfil's webhooks: verifies each request per the Standard
// Webhooks specification before it trusts the body. Node.js 18 or later, with only its own
// modules (node:crypto, node:http): no npm package.
//
//   WEBHOOK_SECRET=whsec_... node receiver.mjs [--addr 127.0.0.1:8000] [--secret-file FILE]
//
// The secret is the worker's FULFIL_WEBHOOK_SECRET. For every request it checks:
//   - webhook-timestamp is within 5 minutes of the clock (a recorded request replayed later is
//     refused);
//   - webhook-signature holds, among its space-separated signatures, "v1," and the base64 of
//     HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64-decoded
//     part of the secret after "whsec_", compared in constant time (crypto.timingSafeEqual).
// A verified event is printed as one JSON line on standard output, {"webhookId": ..., "event":
// ...}, and answered 204; a webhook-id already seen is answered 204 without printing it again
// (delivery is at least once). A request that does not verify gets 401 and a line on stderr.

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

const TOLERANCE_SECONDS = 5 * 60;
const MAX_BODY = 1 << 20;

function parseArgs(argv) {
  const opts = { addr: "127.0.0.1:8000", secretFile: "" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--addr") opts.addr = argv[++i];
    else if (a === "--secret-file") opts.secretFile = argv[++i];
    else {
      console.error(`usage: node receiver.mjs [--addr HOST:PORT] [--secret-file FILE]  (unknown argument ${a})`);
      process.exit(2);
    }
  }
  return opts;
}

// decodeSecret returns the key bytes of "whsec_<base64>".
function decodeSecret(secret) {
  const s = (secret || "").trim();
  if (!s.startsWith("whsec_")) throw new Error('must start with "whsec_"');
  const b64 = s.slice("whsec_".length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new Error('the part after "whsec_" is not base64');
  return Buffer.from(b64, "base64");
}

// verify throws unless the request verifies.
function verify(key, id, timestamp, signatures, body, nowSeconds = Math.floor(Date.now() / 1000)) {
  if (!id || !timestamp || !signatures) throw new Error("missing webhook-id, webhook-timestamp or webhook-signature");
  if (!/^\d+$/.test(timestamp)) throw new Error("webhook-timestamp is not a number");
  if (Math.abs(nowSeconds - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new Error("webhook-timestamp is more than 5 minutes from now");
  }
  const mac = createHmac("sha256", key);
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  const want = Buffer.from(`v1,${mac.digest("base64")}`);
  for (const sig of signatures.split(" ")) {
    const got = Buffer.from(sig);
    if (got.length === want.length && timingSafeEqual(got, want)) return;
  }
  throw new Error("no valid v1 signature");
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let key;
  try {
    const secret = opts.secretFile ? readFileSync(opts.secretFile, "utf8") : process.env.WEBHOOK_SECRET;
    key = decodeSecret(secret);
  } catch (err) {
    console.error(`receiver: WEBHOOK_SECRET: ${err.message}`);
    process.exit(2);
  }
  const seen = new Set();
  const server = createServer((req, res) => {
    if (req.method !== "POST") {
      res.writeHead(405).end("POST only\n");
      return;
    }
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413).end("body too large\n");
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (size > MAX_BODY) return;
      const body = Buffer.concat(chunks); // the bytes as sent: never re-encode before verifying
      const id = req.headers["webhook-id"];
      try {
        verify(key, id, req.headers["webhook-timestamp"], req.headers["webhook-signature"], body);
      } catch (err) {
        console.error(`receiver: refused a request (webhook-id ${JSON.stringify(id ?? "")}): ${err.message}`);
        res.writeHead(401).end("signature verification failed\n");
        return;
      }
      if (!seen.has(id)) {
        seen.add(id);
        let event;
        try {
          event = JSON.parse(body.toString("utf8"));
        } catch {
          event = body.toString("utf8");
        }
        process.stdout.write(`${JSON.stringify({ webhookId: id, event })}\n`);
      }
      res.writeHead(204).end();
    });
  });
  const i = opts.addr.lastIndexOf(":");
  const host = opts.addr.slice(0, i) || "127.0.0.1";
  const port = Number(opts.addr.slice(i + 1));
  server.listen(port, host, () => {
    const a = server.address();
    console.error(`receiver listening on http://${a.address}:${a.port}`);
  });
  for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
}

main();

// publish-and-wait: what a web shop or CRM does to buy a license through fulfil, with the npm
// `nats` client. It publishes one purchase request on NATS JetStream and waits for the
// purchase's outcome on the events stream, read through a durable consumer of its own.
//
//   node publish-and-wait.mjs [--nats-url URL] [--consumer NAME] [--timeout 120] FILE
//
// FILE is a purchase request (see ../requests and docs/contract.md). It is published exactly
// as read, with
//
//   Nats-Msg-Id: <idempotencyKey>:<first 32 lowercase hex digits of SHA-256 of the body>
//
// so an exact re-send within the stream's duplicate window is dropped by the stream, while a
// different body under the same key reaches the worker (and is answered with a replay of the
// key's outcome, or a conflict).
//
// The outcome is read from FULFIL_EVENTS through the durable pull consumer --consumer (created
// when missing), which only sees the completed and failed subjects. A real shop runs that
// consumer in a long-lived process and handles every outcome it delivers; this script
// acknowledges the outcomes of other requests after printing them, and stops at its own: the
// event whose Fulfil-Idempotency-Key header is the request's key and whose Fulfil-Request-Seq
// header is the stream sequence of the publish acknowledgement.
//
// It prints the outcome event as one JSON line on standard output and exits 0 when the
// purchase completed, 1 when it failed, 2 for a bad request or bad arguments, 3 when no outcome
// arrived within --timeout seconds.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { AckPolicy, DeliverPolicy, connect, credsAuthenticator, headers, nanos } from "nats";

const EXIT_COMPLETED = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_TIMEOUT = 3;

const REQUESTS_STREAM = "FULFIL_REQUESTS";
const EVENTS_STREAM = "FULFIL_EVENTS";
const HEADER_KEY = "Fulfil-Idempotency-Key";
const HEADER_REQUEST_SEQ = "Fulfil-Request-Seq";

// msgID is the Nats-Msg-Id of a request: the key, a colon, and the first 32 lowercase hex
// digits (16 bytes) of the SHA-256 of the exact body bytes.
export function msgID(key, body) {
  return key + ":" + createHash("sha256").update(body).digest("hex").slice(0, 32);
}

function usage(message) {
  if (message) console.error(message);
  console.error(
    "usage: node publish-and-wait.mjs [--nats-url URL] [--nats-creds FILE] [--subject-prefix fulfil]\n" +
      "                                 [--consumer NAME] [--timeout SECONDS] [--traceparent TP] FILE",
  );
  return EXIT_USAGE;
}

async function main(argv) {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        "nats-url": { type: "string", default: process.env.NATS_URL || "nats://127.0.0.1:4222" },
        "nats-creds": { type: "string", default: process.env.NATS_CREDS || "" },
        "subject-prefix": { type: "string", default: process.env.FULFIL_SUBJECT_PREFIX || "fulfil" },
        consumer: { type: "string", default: "example-shop-outcomes" },
        timeout: { type: "string", default: "120" },
        traceparent: { type: "string", default: "" },
      },
    });
  } catch (err) {
    return usage(err.message);
  }
  const opts = args.values;
  if (args.positionals.length !== 1) return usage();
  const timeoutMs = Number(opts.timeout) * 1000;
  if (!(timeoutMs > 0)) return usage(`--timeout ${opts.timeout}: want a number of seconds`);

  // The body is published byte for byte as read: the Nats-Msg-Id is computed over these bytes.
  const file = args.positionals[0];
  let body, key;
  try {
    body = readFileSync(file);
    key = JSON.parse(body.toString("utf8")).idempotencyKey;
  } catch (err) {
    console.error(`${file}: ${err.message}`);
    return EXIT_USAGE;
  }
  if (typeof key !== "string" || key === "") {
    // Everything else is validated by the worker, which answers with failed / invalid_request.
    console.error(`${file}: no idempotencyKey`);
    return EXIT_USAGE;
  }
  const prefix = opts["subject-prefix"];
  const subjects = {
    requested: `${prefix}.purchase.requested`,
    completed: `${prefix}.purchase.completed`,
    failed: `${prefix}.purchase.failed`,
  };

  const connectOpts = { servers: opts["nats-url"].split(","), name: "fulfil example publish-and-wait (node)" };
  if (opts["nats-creds"]) connectOpts.authenticator = credsAuthenticator(readFileSync(opts["nats-creds"]));
  let nc;
  try {
    nc = await connect(connectOpts);
  } catch (err) {
    console.error(`connect to NATS: ${err.message}`);
    return EXIT_FAILED;
  }
  try {
    return await publishAndWait(nc, subjects, key, body, opts, timeoutMs);
  } finally {
    await nc.close();
  }
}

async function publishAndWait(nc, subjects, key, body, opts, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();

  // 1. The durable consumer exists before the request is published, so the outcome cannot slip
  //    past it. On its first creation it starts with new events only; afterwards it resumes
  //    where this application left off. Creating it again with the same settings is a no-op.
  const durable = opts.consumer;
  try {
    await jsm.consumers.add(EVENTS_STREAM, {
      durable_name: durable,
      description: "purchase outcomes for the fulfil publish-and-wait example",
      filter_subjects: [subjects.completed, subjects.failed],
      deliver_policy: DeliverPolicy.New,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
    });
  } catch (err) {
    console.error(`consumer ${durable} on ${EVENTS_STREAM}: ${err.message} (is a fulfil worker running?)`);
    return EXIT_FAILED;
  }

  // 2. Publish with the contract's Nats-Msg-Id (and the optional traceparent).
  const id = msgID(key, body);
  const h = headers();
  if (opts.traceparent) h.set("traceparent", opts.traceparent);
  let ack;
  try {
    ack = await js.publish(subjects.requested, body, { msgID: id, headers: h });
  } catch (err) {
    console.error(`publish: ${err.message}`);
    return EXIT_FAILED;
  }
  console.error(`published ${key} as ${id}: stream sequence ${ack.seq}`);

  // 3. Wait for the outcome of that request message.
  let outcomes, acknowledge;
  if (ack.duplicate) {
    // The stream dropped this publish: the same bytes were published within its duplicate
    // window, and the acknowledgement names that earlier message. Its outcome may already have
    // been delivered (and acknowledged) on the durable consumer, so read it from the stream
    // instead, starting one duplicate window (plus a margin) ago.
    console.error(`duplicate of a publish within the duplicate window: reading that request's outcome from ${EVENTS_STREAM}`);
    let windowMs = 120_000;
    try {
      const si = await jsm.streams.info(REQUESTS_STREAM);
      windowMs = si.config.duplicate_window / 1e6;
    } catch {
      // keep the default window
    }
    outcomes = await js.consumers.get(EVENTS_STREAM, {
      filterSubjects: [subjects.completed, subjects.failed],
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(Date.now() - windowMs - 60_000).toISOString(),
    });
    acknowledge = false;
  } else {
    outcomes = await js.consumers.get(EVENTS_STREAM, durable);
    acknowledge = true;
  }

  while (Date.now() < deadline) {
    const m = await outcomes.next({ expires: 1000 });
    if (m === null) continue;
    const evKey = m.headers?.get(HEADER_KEY) ?? "";
    const evSeq = Number(m.headers?.get(HEADER_REQUEST_SEQ) ?? "0");
    let ev;
    try {
      ev = m.json();
    } catch (err) {
      console.error(`skipping an event on ${m.subject}: ${err.message}`);
    }
    const mine = ev !== undefined && evKey === key && evSeq === ack.seq;
    if (ev !== undefined && !mine && acknowledge) {
      console.error(`outcome of another request: ${evKey} (request sequence ${evSeq}): ${ev.type}`);
    }
    if (acknowledge) await m.ackAck();
    if (mine) return report(ev);
  }
  console.error(`no outcome for ${key} within ${opts.timeout}s`);
  return EXIT_TIMEOUT;
}

// report prints the outcome event as one JSON line and returns the exit code for it.
function report(ev) {
  console.log(JSON.stringify(ev));
  const replayed = ev.replayed ? " (replayed)" : "";
  switch (ev.type) {
    case "purchase.completed":
      console.error(`completed${replayed}: order ${ev.orderNo}, PBX ${ev.productNo}, auto-renewal ${ev.autoRenewal}`);
      return EXIT_COMPLETED;
    case "purchase.failed":
      console.error(`failed${replayed} at ${ev.step}: ${ev.reason}: ${ev.message}`);
      return EXIT_FAILED;
    default:
      console.error(`unexpected event type ${ev.type}`);
      return EXIT_FAILED;
  }
}

process.exitCode = await main(process.argv.slice(2));

// Package bench measures fulfil end to end in one process: how fast it completes purchases,
// how close their latency comes to the partner API's critical path, and what the guarantees
// cost against a bare loop that guarantees nothing.
//
// Run starts an embedded JetStream server in a temporary directory, the partner simulator with
// a fixed latency on every endpoint, and Config.Workers worker.Worker pools (each with its own
// NATS connection). It publishes Config.Purchases new-license purchases with unique keys, all
// at once (open loop) or at Config.Rate per second, follows the events stream, and measures
// completed sagas per second, the latency from publish to the completed event, partner calls,
// NATS traffic, CPU and peak memory. It then verifies that every purchase completed with
// exactly one order in the simulator's ledger: a run that loses or doubles a purchase fails.
//
// In the same run it measures two references:
//
//   - the critical path: the partner latency times the sequential partner rounds of the saga
//     (see CriticalRounds), the least latency any implementation of this saga can have;
//   - the bare loop: the same partner calls through the same client and simulator, consuming
//     the same requests from a plain pull consumer with the same concurrency and publishing
//     one result per purchase, with no checkpoints, no idempotency and no progress events.
//
// Everything (server, simulator, workers, load generator) runs in this process, so the CPU
// and memory figures are those of the whole stack; with Config.WorkerExe the workers are
// `fulfil worker` processes instead, measured on their own, and Phase.TotalCPUSeconds adds this
// process's CPU to theirs.
//
// RunScaleOut measures throughput against the number of workers (Config.ScaleOut), each count
// on a fresh stack, optionally a JetStream cluster of Config.ClusterNodes servers in this
// process with replicated streams; Limit names what bounded each row: the cores (this stack's
// CPU, or the machine's when something else shares it), the partner client's call slots, the
// workers' concurrency, or else the NATS round trips. WriteScaleOut and WriteScaleSVG print and
// plot the rows.
package bench

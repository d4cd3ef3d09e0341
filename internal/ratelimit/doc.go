// Package ratelimit shares one partner rate budget (FULFIL_PARTNER_RATE_LIMIT, calls per
// second, token calls included) among every worker of the same subject prefix, whatever their
// number, through a JetStream KV bucket.
//
// # Design
//
// Every worker runs a Coordinator next to its partner client's Limiter:
//
//   - It keeps a heartbeat key <prefix>.<random> in the bucket FULFIL_RATE (memory storage:
//     a heartbeat is worthless after a restart; history 1; the workers' replicas; max age =
//     TTL), whose value names the worker and its budget, rewritten every heartbeat (1 s). Like
//     fulfil's other names the bucket's does not depend on the subject prefix; the keys do.
//   - It watches the keys of its prefix (<prefix>.*), so it knows the live workers N, itself
//     included, and sets its Limiter to budget/N with a burst of a tenth of a second of that
//     share (at least one call). When the workers were not all given the same budget, each shares the
//     smallest, and says so in its log.
//   - A newcomer reads the bucket before it writes its key, and runs from then on at the
//     smallest share, budget/(N+1) with a burst of one call; the others shrink as soon as their
//     watch shows its key (milliseconds). Once it has seen its own key come back and a settle
//     time has passed (half a heartbeat) it takes its full burst. Before it has read the bucket
//     at all (the start-up token call) it runs at one call per second (StartLimiter).
//   - A worker that stops deletes its key, and the others grow at once. A worker that crashed
//     stops writing: its key ages out of the bucket after the TTL (3 heartbeats), and the
//     others count it as gone when their own heartbeat has come back through the watch more
//     than a TTL after its last one. Measuring silence against one's own echo means a broken
//     watch or connection never reads as a departure.
//   - NATS trouble never stops purchases: when the bucket cannot be written or watched, a
//     worker keeps its last share (it may shrink, it never grows beyond budget/N_last) and
//     tries again every heartbeat, re-creating the bucket if it was deleted. A worker cut off
//     from NATS can still spend its share, but only on the purchases it already holds: it takes
//     no new ones until it is back.
//
// Budget 0 means unlimited, as before: nothing is written and nothing is shared.
//
// The Limiter is this package's own token bucket rather than a rate.Limiter: a rate.Limiter's
// Wait reserves a future instant for every caller, so when the share shrinks (a worker joins)
// the callers already waiting keep the slots they reserved at the old rate, and with 64 sagas
// waiting the account would be over budget for seconds. Here one caller at a time waits for the
// next token, the others queue behind it in arrival order, and a new rate applies to the next
// call.
//
// # Why not one shared token bucket
//
// A token bucket kept in KV, taken with a compare-and-set per call, would be exact, but it
// costs a JetStream round trip (a replicated write on a cluster) before every partner call,
// adds contention between workers that grows with the call rate, and makes every purchase stop
// when NATS hiccups. The heartbeat design costs one write per worker per second, whatever the
// call rate, and partner calls never wait on NATS. Its price is that a worker's unused share is
// not lent to the others (a busy worker next to an idle one gets budget/N, not the whole
// budget), and that for the few milliseconds between a newcomer's first write and the others'
// watches seeing it the account may exceed the budget by the newcomer's smallest share.
//
// In any one second the account sends at most the budget plus the workers' bursts, so at most
// 110% of the budget (a tenth of a second per worker, at least one call each): choose a budget
// of at least 10 calls per second per worker for that bound to hold.
package ratelimit

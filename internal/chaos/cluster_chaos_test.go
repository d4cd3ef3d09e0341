//go:build chaos

package chaos

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// clusterWorkerConfig is the worker configuration of the cluster tests: replicated streams and
// bucket, short ack wait and lease so that a dead worker's requests move on within seconds,
// and enough deliveries that faults never exhaust a request.
func clusterWorkerConfig() worker.Config {
	return worker.Config{
		Replicas:        3,
		Concurrency:     16,
		AckWait:         2 * time.Second,
		MaxDeliver:      50,
		NakDelay:        100 * time.Millisecond,
		MaxNakDelay:     time.Second,
		MessageTimeout:  30 * time.Second,
		ShutdownTimeout: 2 * time.Second,
		Idempotency:     idempotency.Config{LeaseTTL: 2 * time.Second},
	}
}

func quickRetry() workflow.RetryPolicy {
	return workflow.RetryPolicy{InitialInterval: 20 * time.Millisecond, MaxInterval: 500 * time.Millisecond, MaxElapsed: 10 * time.Second, MaxRetries: 20}
}

// streams whose leader the nemesis kills.
var leaderStreams = []string{messages.StreamRequests, messages.StreamRequests, "KV_" + idempotency.DefaultBucket, messages.StreamEvents}

// TestClusterChaos runs purchases through three workers on a 3-node cluster while a seeded
// nemesis kills and restarts workers, kills the server leading a stream and restarts it, and
// cuts a server off from the others for a few seconds. Afterwards every purchase must have
// exactly one outcome and at most one order, and every completed one its renewal and code.
func TestClusterChaos(t *testing.T) {
	const (
		purchases = 500
		interval  = 80 * time.Millisecond
	)
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	start := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(start).Seconds()}, args...)...)
	}

	c := newCluster(t, 3)
	sim := newSim(t, seed, 10*time.Millisecond)
	_, js := connect(t, c.urls(0))
	workers := newPool(t, workerSpec{partnerURL: sim.URL, cfg: clusterWorkerConfig(), retry: quickRetry()}, c.urls, 3)
	logf("cluster and workers up")

	prod := startProducer(t, js, fmt.Sprintf("chaos-a-%d", seed), purchases, interval, func(i int) bool { return i%10 == 3 })

	// The nemesis: one fault at a time, so that a quorum of servers is always reachable.
	var faults int
	for running := true; running; {
		select {
		case <-prod.done:
			running = false
			continue
		case <-time.After(time.Duration(500+rng.IntN(1500)) * time.Millisecond):
		}
		workers.supervise()
		faults++
		switch op := rng.IntN(10); {
		case op < 5:
			i := rng.IntN(3)
			name := workers.kill(i)
			logf("nemesis: killed worker %s", name)
			time.Sleep(time.Duration(100+rng.IntN(1000)) * time.Millisecond)
			logf("nemesis: started %s", workers.start(i).name)
		case op < 8:
			stream := leaderStreams[rng.IntN(len(leaderStreams))]
			li := c.streamLeader(stream)
			if li < 0 {
				logf("nemesis: %s has no leader right now; skipped", stream)
				continue
			}
			n := c.nodes[li]
			down := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
			logf("nemesis: kill %s, leader of %s, for %s", n.name, stream, down)
			c.stop(n)
			time.Sleep(down)
			c.restart(n)
			c.waitReady(time.Minute)
			logf("nemesis: %s back and current", n.name)
		default:
			i := rng.IntN(3)
			cut := time.Duration(2000+rng.IntN(3000)) * time.Millisecond
			logf("nemesis: partition %s from the others for %s", c.nodes[i].name, cut)
			c.partition(i)
			time.Sleep(cut)
			c.heal(i)
			c.waitReady(time.Minute)
			logf("nemesis: %s healed and current", c.nodes[i].name)
		}
	}
	logf("all %d purchases published after %d faults; waiting for quiescence", purchases, faults)
	waitQuiet(t, js, 3*time.Minute, workers.supervise)
	logf("quiet")

	keys := prod.keys()
	v := collect(t, js, keys, sim.Sim)
	if v.attempts != purchases {
		t.Errorf("%d purchases submitted, want %d", v.attempts, purchases)
	}
	if len(workers.exits) > 0 {
		t.Logf("workers whose Run returned by itself: %v", workers.exits)
	}
	taken, most := takeovers(t, js)
	logf("%d keys were acquired more than once (at most %d times)", taken, most)
	if taken == 0 {
		t.Errorf("no purchase was interrupted: the faults missed every saga, so the run proves little")
	}
	logAsyncErrors(t)
	logf("done")
}

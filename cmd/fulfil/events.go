package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
)

// event is a decoded event with the request sequence it answers (0 if unknown).
type event struct {
	messages.Event
	requestSeq uint64
}

// watchEvents follows the events stream from start and sends every decoded event to the
// returned channel until ctx ends. The stream must exist.
func watchEvents(ctx context.Context, js jetstream.JetStream, prefix string, start time.Time) (<-chan event, error) {
	return followEvents(ctx, js, jetstream.OrderedConsumerConfig{
		FilterSubjects: messages.SubjectsFor(prefix).Events(),
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
}

// followEvents reads the events stream through an ordered consumer of cfg and sends every
// decoded event to the returned channel until ctx ends.
func followEvents(ctx context.Context, js jetstream.JetStream, cfg jetstream.OrderedConsumerConfig) (<-chan event, error) {
	cons, err := js.OrderedConsumer(ctx, messages.StreamEvents, cfg)
	if err != nil {
		return nil, fmt.Errorf("follow events: %w", err)
	}
	out := make(chan event, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := messages.DecodeEvent(m.Data())
		if err != nil {
			return
		}
		seq, _ := strconv.ParseUint(m.Headers().Get(messages.HeaderRequestSeq), 10, 64)
		select {
		case out <- event{Event: ev, requestSeq: seq}:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, fmt.Errorf("follow events: %w", err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return out, nil
}

// terminal reports whether ev is a result event (completed or failed).
func terminal(ev messages.Event) bool {
	t := ev.EventType()
	return t == messages.TypeCompleted || t == messages.TypeFailed
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/idempotency"
)

// IntakeBucket is the KV bucket in which the HTTP intake remembers, per idempotency key, the
// first purchase it accepted: until a worker records the key in FULFIL_SAGAS, it is what
// tells a repeated POST from a different purchase under the same key, across API instances.
const IntakeBucket = "FULFIL_INTAKE"

// DefaultIntakeTTL is how long an intake entry is kept without FULFIL_KEY_RETENTION.
const DefaultIntakeTTL = idempotency.DefaultTTL

// IntakeConfig configures the intake bucket; zero fields take the defaults beside them.
type IntakeConfig struct {
	// TTL is how long an entry is kept after its last write (default 30 days). Use the key
	// retention of the sagas bucket: an entry matters only until a worker has recorded its
	// key, and a request may wait in the requests stream for as long as no worker runs.
	TTL time.Duration
	// Replicas of the bucket (default 1).
	Replicas int
	// Storage of the bucket (default file storage).
	Storage jetstream.StorageType
}

// IntakeEntry is what the intake remembers of the first purchase accepted under a key.
type IntakeEntry struct {
	Key string `json:"key"`
	// Fingerprint is messages.PurchaseRequest.Fingerprint of the accepted request.
	Fingerprint string `json:"fingerprint"`
	// MsgID is the Nats-Msg-Id it was published with.
	MsgID string `json:"msgId"`
	// Seq is its sequence in FULFIL_REQUESTS, once the stream acknowledged it.
	Seq        uint64    `json:"seq,omitempty"`
	AcceptedAt time.Time `json:"acceptedAt"`
}

// Intake is the intake bucket.
type Intake struct {
	kv jetstream.KeyValue
}

// OpenIntake creates the intake bucket or updates its configuration (as the worker does with
// its streams and bucket at every start) and returns it.
func OpenIntake(ctx context.Context, js jetstream.JetStream, cfg IntakeConfig) (*Intake, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultIntakeTTL
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      IntakeBucket,
		Description: "fulfil: the first purchase accepted over HTTP per idempotency key",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", IntakeBucket, err)
	}
	return &Intake{kv: kv}, nil
}

// BindIntake returns the intake bucket without creating it; ok is false when it does not exist.
func BindIntake(ctx context.Context, js jetstream.JetStream) (in *Intake, ok bool, err error) {
	kv, err := js.KeyValue(ctx, IntakeBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("bind bucket %s: %w", IntakeBucket, err)
	}
	return &Intake{kv: kv}, true, nil
}

// errNoEntry means the intake has no entry for the key.
var errNoEntry = errors.New("no intake entry")

// get returns key's entry and its revision, or errNoEntry.
func (in *Intake) get(ctx context.Context, key string) (IntakeEntry, uint64, error) {
	e, err := in.kv.Get(ctx, idempotency.EncodeKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return IntakeEntry{}, 0, errNoEntry
	}
	if err != nil {
		return IntakeEntry{}, 0, fmt.Errorf("read %s: %w", IntakeBucket, err)
	}
	var ent IntakeEntry
	if err := json.Unmarshal(e.Value(), &ent); err != nil {
		return IntakeEntry{}, 0, fmt.Errorf("decode %s entry: %w", IntakeBucket, err)
	}
	return ent, e.Revision(), nil
}

// claim stores ent under its key unless the key has an entry already. It returns the stored
// entry (ent, or the existing one), its revision, and whether ent was stored. Two instances
// claiming one key at once: exactly one stores its entry, the other reads it.
func (in *Intake) claim(ctx context.Context, ent IntakeEntry) (IntakeEntry, uint64, bool, error) {
	b, err := json.Marshal(ent)
	if err != nil {
		return IntakeEntry{}, 0, false, err
	}
	for range 3 {
		rev, err := in.kv.Create(ctx, idempotency.EncodeKey(ent.Key), b)
		if err == nil {
			return ent, rev, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return IntakeEntry{}, 0, false, fmt.Errorf("write %s: %w", IntakeBucket, err)
		}
		old, rev, err := in.get(ctx, ent.Key)
		if errors.Is(err, errNoEntry) {
			continue // deleted or expired in between: try again
		}
		return old, rev, false, err
	}
	return IntakeEntry{}, 0, false, fmt.Errorf("write %s: the entry of %q keeps changing", IntakeBucket, ent.Key)
}

// setSeq records the stream sequence of an entry's request, if the entry is still at rev.
func (in *Intake) setSeq(ctx context.Context, ent IntakeEntry, rev uint64, seq uint64) error {
	ent.Seq = seq
	b, err := json.Marshal(ent)
	if err != nil {
		return err
	}
	if _, err := in.kv.Update(ctx, idempotency.EncodeKey(ent.Key), b, rev); err != nil {
		return fmt.Errorf("write %s: %w", IntakeBucket, err)
	}
	return nil
}

package messages

import (
	"crypto/sha256"
	"encoding/hex"
)

// MsgIDHashDigits is the number of hex digits of the body's SHA-256 in a request's Nats-Msg-Id.
const MsgIDHashDigits = 32

// RequestMsgID is the Nats-Msg-Id a producer publishes a purchase request with: the
// idempotency key, a colon, and the first 32 hex digits (lower case) of the SHA-256 of the
// exact body bytes published:
//
//	shop-eu-order-100231:9f86d081884c7d659a2feaa0c55ad015
//
// An exact re-send of the same bytes within the requests stream's duplicate window is dropped
// by the stream (its publish acknowledgement says duplicate and carries the first message's
// sequence). Anything else, the same key with another body included, is a message of its own
// and reaches a worker, which answers it with the stored outcome of the same purchase
// ("replayed": true) or with failed / conflict for a different purchase. Deriving the id from
// the key alone would let the stream drop a conflicting reuse unseen.
func RequestMsgID(key string, body []byte) string {
	sum := sha256.Sum256(body)
	b := make([]byte, 0, len(key)+1+MsgIDHashDigits)
	b = append(b, key...)
	b = append(b, ':')
	return string(hex.AppendEncode(b, sum[:MsgIDHashDigits/2]))
}

package partnerclient

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir holds response bodies named <endpoint>.json: generated from the simulator
// (go test ./internal/partnercheck -run TestCheckSimulator -update-fixtures), or captured from
// the real portal with `fulfil partner check --save partnerclient/testdata/fixtures`.
const fixtureDir = "testdata/fixtures"

// TestFixturesDecode decodes every fixture with its endpoint's decoder. It fails when a
// decoder rejects a fixture. (internal/partnercheck compares the fixtures with the Go
// types field by field.)
func TestFixturesDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s (%v)", fixtureDir, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			ep := Endpoint(strings.TrimSuffix(name, ".json"))
			if _, ok := decoders[ep]; !ok {
				t.Fatalf("%s names no endpoint; want one of %v", name, AllEndpoints)
			}
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := decodeBody(ep, body); err != nil {
				t.Errorf("decode %s: %v", name, err)
			}
		})
	}
}

// decoders holds the decoder of every endpoint, its result discarded.
var decoders = map[Endpoint]func(json.RawMessage) error{
	EndpointToken: func(raw json.RawMessage) error {
		_, _, err := decodeToken(raw, driftSink{})
		return err
	},
	EndpointProductList:       discard(decodeProductPage),
	EndpointProductDetails:    discard(decodeProduct),
	EndpointPurchaseInfo:      discard(decodePurchaseInfo),
	EndpointBillingContacts:   discard(decodeBillingContacts),
	EndpointSubordinateUsers:  discard(decodeSubordinateUsers),
	EndpointCreateOrder:       discard(decodeOrderResult),
	EndpointOrderList:         discard(decodeOrderPage),
	EndpointOrderDetails:      discard(decodeOrderDetails),
	EndpointAutoRenewStatus:   discard(decodeAutoRenewStatus),
	EndpointEnableAutoRenewal: discard(decodeEnableAutoRenewal),
	EndpointActivationCode:    discard(decodeActivationCode),
}

func discard[T any](decode func(json.RawMessage, driftSink) (T, error)) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		_, err := decode(raw, driftSink{})
		return err
	}
}

// decodeBody decodes a whole response body of ep as the client would: a success envelope
// whose result the endpoint's decoder takes.
func decodeBody(ep Endpoint, body []byte) error {
	decode, ok := decoders[ep]
	if !ok {
		return fmt.Errorf("no decoder for endpoint %q", ep)
	}
	env, err := decodeEnvelope(body)
	if err != nil {
		return err
	}
	if env.Code != CodeSuccess {
		return fmt.Errorf("envelope code %q, want %q", env.Code, CodeSuccess)
	}
	return decode(env.Result)
}

func TestDecodersCoverEveryEndpoint(t *testing.T) {
	for _, ep := range AllEndpoints {
		if decoders[ep] == nil {
			t.Errorf("no decoder for %s", ep)
		}
	}
	if len(decoders) != len(AllEndpoints) {
		t.Errorf("%d decoders for %d endpoints", len(decoders), len(AllEndpoints))
	}
}

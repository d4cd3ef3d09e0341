package partnerclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureDir holds response bodies named <endpoint>.json: generated from the simulator
// (go test ./partnerclient -run TestCheckSimulator -update-fixtures), or captured from
// the real portal with `fulfil partner check --save partnerclient/testdata/fixtures`.
const fixtureDir = "testdata/fixtures"

// TestFixturesDecode decodes every fixture with its endpoint's decoder. It fails when a
// decoder rejects a fixture or a value does not fit its Go type, and logs unexpected and
// missing fields, which the decoders tolerate.
func TestFixturesDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s (%v)", fixtureDir, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			ep := Endpoint(strings.TrimSuffix(name, ".json"))
			if _, ok := resultSpecs[ep]; !ok {
				t.Fatalf("%s names no endpoint; want one of %v", name, AllEndpoints)
			}
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			findings, err := checkBody(ep, body)
			if err != nil {
				t.Errorf("decode %s: %v", name, err)
			}
			for _, f := range findings {
				if f.Kind == FindingMismatch {
					t.Errorf("%s: %s", name, f)
					continue
				}
				t.Logf("%s: %s (warning)", name, f)
			}
		})
	}
}

package messages

import (
	"embed"
	"io/fs"
)

// File names of the embedded JSON Schemas (draft 2020-12), one per message body.
const (
	SchemaRequest   = "purchase-request.v1.json"
	SchemaCompleted = "purchase-completed.v1.json"
	SchemaFailed    = "purchase-failed.v1.json"
	SchemaProgress  = "purchase-progress.v1.json"
)

//go:embed schema/*.json
var schemaFS embed.FS

// Schema returns the JSON Schema with the given file name (one of the Schema* constants), and
// false when there is none.
func Schema(name string) ([]byte, bool) {
	b, err := fs.ReadFile(schemaFS, "schema/"+name)
	if err != nil {
		return nil, false
	}
	return b, true
}

// SchemaNames returns the file names of the embedded schemas, sorted.
func SchemaNames() []string {
	entries, _ := fs.ReadDir(schemaFS, "schema") // sorted; cannot fail for an embedded directory
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

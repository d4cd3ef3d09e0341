// Package examples holds what an integrator starts from: sample purchase requests
// (examples/requests), a Go program (examples/go/publish-and-wait) and a Node.js script
// (examples/node) that publish a request and wait for its outcome with a durable JetStream
// consumer of their own. See examples/README.md.
//
// The package has no code: its tests decode and validate every sample request, submit each with
// `fulfil submit -f` to a `fulfil worker --partner-sim`, and run both programs against such a
// worker (the Node one when node and npm are installed; always when CI is set).
package examples

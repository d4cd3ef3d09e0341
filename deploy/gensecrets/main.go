// Command gensecrets writes the secrets of the compose setup into deploy/secrets/: a local CA
// and the certificate of the NATS cluster routes, a password per NATS user of
// deploy/nats/auth.conf, the same passwords for the NATS servers (nats-server.env), and an API
// key of the HTTP intake. Run it once from the repository root, without network:
//
//	go run ./deploy/gensecrets
//
// It refuses to replace existing files unless given -force (the running cluster keeps using
// the old ones). deploy/secrets/ is ignored by git.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/fulfil/fulfil/internal/devsecrets"
)

func main() {
	dir := flag.String("dir", "deploy/secrets", "directory to write the secrets to")
	force := flag.Bool("force", false, "replace existing files")
	hosts := flag.String("hosts", "nats-1,nats-2,nats-3,localhost,127.0.0.1", "comma-separated host names and IPs of the route certificate")
	flag.Parse()
	paths, err := devsecrets.Generate(*dir, devsecrets.Options{Hosts: strings.Split(*hosts, ","), Force: *force})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensecrets:", err)
		os.Exit(1)
	}
	for _, p := range paths {
		fmt.Println(p)
	}
}

package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fulfil/fulfil/internal/api"
	"github.com/fulfil/fulfil/internal/devsecrets"
	"github.com/fulfil/fulfil/internal/natsembed"
	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/partnerclient/partnertest"
)

// The files of deploy/ are checked against the code, so they cannot drift from the binary: every
// environment variable they set is one fulfil reads, the probes hit the real endpoints on the
// port fulfil listens on, commands and flags exist, and credentials and file paths line up.

const deployDir = "../../deploy"

// nonFulfilEnv are variables the manifests may set that the Go runtime reads, not fulfil.
var nonFulfilEnv = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG", "TZ"}

// workerDrain is how long a worker may drain after SIGTERM (worker.Config.ShutdownTimeout's
// default); the orchestrators must wait longer before they kill it.
const workerDrain = 30 * time.Second

// deployTree returns every file under deploy/, keyed by its slash-separated path in it.
func deployTree(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(os.DirFS(deployDir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path.Join(deployDir, p))
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// deployProblems returns every way the files of deploy/ disagree with the code. The NATS
// configuration reads the users' passwords from the environment (setNATSPasswords).
func deployProblems(files map[string]string) []string {
	imageEnv, problems := checkDockerfile(files["Dockerfile"])
	problems = append(problems, checkCompose(files, imageEnv)...)
	problems = append(problems, checkK8s(files, imageEnv)...)
	problems = append(problems, checkNATSConfigs(files)...)
	return problems
}

// natsServerConf is the NATS server configuration of compose.yaml's nodes; natsAuthConf, the
// roles it includes, also the Helm values' (k8s/nats-helm-values.yaml) and the embedded
// server's (FULFIL_NATS_AUTH_FILE).
const (
	natsServerConf = "nats/nats.conf"
	natsAuthConf   = "nats/auth.conf"
	natsHelmValues = "k8s/nats-helm-values.yaml"
)

// natsRoles are the users of natsAuthConf, each with the inbox prefix its clients must use
// ("" for the client libraries' default, _INBOX).
var natsRoles = map[string]string{"worker": "_INBOX_worker", "intake": "_INBOX_intake", "operator": "_INBOX_operator", "producer": ""}

// checkNATSConfigs reports the NATS server configurations that do not parse (with nats-server's
// own parser, the route certificates from devsecrets) or lack what fulfil needs, and any other
// .conf file (a configuration no check reads).
func checkNATSConfigs(files map[string]string) []string {
	var problems []string
	for name := range files {
		if path.Ext(name) == ".conf" && name != natsServerConf && name != natsAuthConf {
			problems = append(problems, name+": a NATS configuration the deploy checks do not know")
		}
	}
	dir, err := os.MkdirTemp("", "fulfil-deploy-check")
	if err != nil {
		return append(problems, err.Error())
	}
	defer os.RemoveAll(dir)
	certs := filepath.Join(dir, "certs")
	if _, err := devsecrets.Generate(certs, devsecrets.Options{}); err != nil {
		return append(problems, err.Error())
	}
	for _, name := range []string{natsServerConf, natsAuthConf} {
		text := strings.ReplaceAll(files[name], "/etc/nats/certs/", certs+"/")
		if err := os.WriteFile(filepath.Join(dir, path.Base(name)), []byte(text), 0o600); err != nil {
			return append(problems, err.Error())
		}
	}
	o, err := server.ProcessConfigFile(filepath.Join(dir, path.Base(natsServerConf)))
	if err != nil {
		return append(problems, natsServerConf+": "+strings.TrimSpace(strings.ReplaceAll(err.Error(), dir+"/", "")))
	}
	for _, p := range []struct {
		bad  bool
		what string
	}{
		{!o.JetStream || o.StoreDir == "", "no jetstream block with a store_dir"},
		{o.SyncInterval == 0 && !o.SyncAlways, "no sync_interval: the durability choice is not written down"},
		{o.Cluster.Name == "", "no cluster block"},
		{o.Cluster.TLSConfig == nil || o.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert || o.Cluster.TLSConfig.ClientCAs == nil,
			"cluster routes without mutual TLS (tls { cert_file, key_file, ca_file, verify: true })"},
		{o.MaxPayload != 0 && o.MaxPayload < messages.MaxRequestBytes, fmt.Sprintf("max_payload %d is below the largest request, %d", o.MaxPayload, messages.MaxRequestBytes)},
		{o.NoAuthUser != "" || (len(o.Users) == 0 && len(o.Nkeys) == 0 && len(o.TrustedOperators) == 0), "takes anonymous clients: no users (include auth.conf)"},
	} {
		if p.bad {
			problems = append(problems, natsServerConf+": "+p.what)
		}
	}
	auth, err := natsembed.LoadAuth(filepath.Join(dir, path.Base(natsAuthConf)))
	if err != nil {
		return append(problems, natsAuthConf+": "+strings.ReplaceAll(err.Error(), dir+"/", ""))
	}
	for role := range natsRoles {
		if perms, ok := auth.Permissions(role); !ok {
			problems = append(problems, fmt.Sprintf("%s: no user %s", natsAuthConf, role))
		} else if perms == nil || perms.Publish == nil || perms.Subscribe == nil {
			problems = append(problems, fmt.Sprintf("%s: user %s may publish or subscribe to anything", natsAuthConf, role))
		}
		if !strings.Contains(files[natsAuthConf], "password: $"+devsecrets.PasswordEnv(role)) {
			problems = append(problems, fmt.Sprintf("%s: user %s's password is not $%s", natsAuthConf, role, devsecrets.PasswordEnv(role)))
		}
	}
	for _, u := range auth.Users() {
		if _, ok := natsRoles[u]; !ok {
			problems = append(problems, fmt.Sprintf("%s: user %s is no role of fulfil's", natsAuthConf, u))
		}
	}
	for role, inbox := range natsRoles {
		perms, _ := auth.Permissions(role)
		if perms == nil || perms.Subscribe == nil || inbox == "" {
			continue
		}
		if !slices.Equal(perms.Subscribe.Allow[:1], []string{inbox + ".>"}) || slices.Contains(perms.Subscribe.Allow, "_INBOX.>") {
			problems = append(problems, fmt.Sprintf("%s: user %s must subscribe to its own inbox %s.> first, and not to _INBOX.>", natsAuthConf, role, inbox))
		}
	}
	return problems
}

// setNATSPasswords puts the NATS users' passwords into the environment, as the NATS servers
// get them.
func setNATSPasswords(t *testing.T) {
	t.Helper()
	for role := range natsRoles {
		t.Setenv(devsecrets.PasswordEnv(role), "test"+role+"password")
	}
}

func isSetting(name string) bool {
	return slices.Contains(nonFulfilEnv, name) || slices.Contains(commandSettings(), name)
}

// commandSettings returns the environment variables the command tree declares for its flags.
var commandSettings = sync.OnceValue(func() []string {
	var names []string
	walkFlags(newRoot(&invocation{}), func(_ *cobra.Command, f *pflag.Flag) {
		if env := flagEnv(f); env != "" {
			names = append(names, env)
		}
	})
	return names
})

// commandEnv returns the environment variables fulfil <command> reads for its flags.
func commandEnv(command string) []string {
	root := newRoot(&invocation{})
	cmd, _, err := root.Find([]string{command})
	if err != nil || cmd == root {
		return nil
	}
	var names []string
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		fs.VisitAll(func(f *pflag.Flag) {
			if env := flagEnv(f); env != "" {
				names = append(names, env)
			}
		})
	}
	return names
}

// checkArgs reports a command line that does not start with a fulfil command or that uses a
// flag the command does not have.
func checkArgs(args []string) error {
	if len(args) == 0 {
		return errors.New("no command")
	}
	root := newRoot(&invocation{})
	cmd, rest, err := root.Find(gnuFlags(root, args))
	if err != nil || cmd == root {
		return fmt.Errorf("%q is not a fulfil command", args[0])
	}
	for _, a := range rest {
		if a == "-" || !strings.HasPrefix(a, "-") {
			continue // an argument or a flag's value
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if cmd.Flags().Lookup(name) == nil {
				return fmt.Errorf("fulfil %s has no flag -%s", cmd.Name(), name)
			}
			continue
		}
		if cmd.Flags().ShorthandLookup(a[1:2]) == nil {
			return fmt.Errorf("fulfil %s has no flag %s", cmd.Name(), a)
		}
	}
	return nil
}

// checkHTTPAddr reports an FULFIL_HTTP_ADDR that is unreachable from outside the container or
// that is not on port.
func checkHTTPAddr(addr string, port int) error {
	return checkListenAddr("FULFIL_HTTP_ADDR", addr, port)
}

// checkListenAddr reports a listen address, the value of the setting name, that is unreachable
// from outside the container or that is not on port.
func checkListenAddr(name, addr string, port int) error {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", name, addr, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return fmt.Errorf("%s %q does not listen on every interface", name, addr)
	}
	if p != strconv.Itoa(port) {
		return fmt.Errorf("%s %q is not on the container port %d", name, addr, port)
	}
	return nil
}

// checkDockerfile returns the environment the image sets and what is wrong with the Dockerfile.
func checkDockerfile(text string) (map[string]string, []string) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, "Dockerfile: "+fmt.Sprintf(format, args...))
	}
	env := map[string]string{}
	var user, build string
	var cmd []string
	var expose int
	for _, line := range strings.Split(strings.ReplaceAll(text, "\\\n", " "), "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch instr {
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "USER":
			user = rest
		case "EXPOSE":
			expose, _ = strconv.Atoi(strings.TrimSuffix(rest, "/tcp"))
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &cmd); err != nil {
				bad("CMD %s is not in exec form: %v", rest, err)
			}
		case "RUN":
			if strings.Contains(rest, "go build") {
				build = rest
			}
		}
	}
	if !regexp.MustCompile(`go build .*\./cmd/fulfil$`).MatchString(strings.TrimSpace(build)) {
		bad("does not build ./cmd/fulfil")
	}
	if err := checkArgs(cmd); err != nil {
		bad("CMD: %v", err)
	}
	if !strings.HasPrefix(user, "nonroot") {
		bad("USER is %q, want nonroot", user)
	}
	for k := range env {
		if !isSetting(k) {
			bad("ENV %s is not a fulfil setting", k)
		}
	}
	if err := checkHTTPAddr(env["FULFIL_HTTP_ADDR"], expose); err != nil {
		bad("%v (EXPOSE %d)", err, expose)
	}
	return env, problems
}

type composeService struct {
	Image           string            `yaml:"image"`
	Command         []string          `yaml:"command"`
	Environment     map[string]string `yaml:"environment"`
	Secrets         []string          `yaml:"secrets"`
	Ports           []string          `yaml:"ports"`
	Volumes         []string          `yaml:"volumes"`
	EnvFile         []string          `yaml:"env_file"`
	StopGracePeriod string            `yaml:"stop_grace_period"`
}

// composeFile reports whether a compose path (relative to deploy/) names a file of the tree or
// one that `go run ./deploy/gensecrets` writes into deploy/secrets/.
func composeFile(files map[string]string, p string) bool {
	p = path.Clean(p)
	if dir, name := path.Split(p); dir == "secrets/" {
		return slices.Contains(devsecrets.Names(), name)
	}
	_, ok := files[p]
	return ok
}

// publishedPort splits a compose port mapping "[IP:]HOST:CONTAINER"; host is "" when the
// container port is not published.
func publishedPort(p string) (ip, host string, container int) {
	parts := strings.Split(p, ":")
	container, _ = strconv.Atoi(strings.TrimSuffix(parts[len(parts)-1], "/tcp"))
	switch len(parts) {
	case 2:
		host = parts[0]
	case 3:
		ip, host = parts[0], parts[1]
	}
	return ip, host, container
}

// commandRole is the NATS user of deploy/nats/auth.conf a fulfil command logs in as.
func commandRole(command string) string {
	switch command {
	case "worker":
		return "worker"
	case "api":
		return "intake"
	case "submit":
		return "producer"
	case "partnersim", "partner", "demo", "bench":
		return "" // no NATS, or their own
	}
	return "operator"
}

// isFulfil reports whether the service runs the fulfil image (any registry, any tag).
func (s composeService) isFulfil() bool {
	name, _, _ := strings.Cut(path.Base(s.Image), ":")
	return name == "fulfil"
}

// flag returns the value of the service command's flag --name, or def.
func (s composeService) flag(name, def string) string {
	for i, a := range s.Command {
		if (a == "--"+name || a == "-"+name) && i+1 < len(s.Command) {
			return s.Command[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return def
}

// checkCompose returns what is wrong with compose.yaml; imageEnv is what the image sets.
func checkCompose(files map[string]string, imageEnv map[string]string) []string {
	var problems []string
	bad := func(svc, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("compose.yaml: service %s: ", svc)+fmt.Sprintf(format, args...))
	}
	var cf struct {
		Services map[string]composeService `yaml:"services"`
		Secrets  map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal([]byte(files["compose.yaml"]), &cf); err != nil {
		return []string{"compose.yaml: " + err.Error()}
	}
	var natsServers []string
	for name, svc := range cf.Services {
		if strings.HasPrefix(svc.Image, "nats:") {
			natsServers = append(natsServers, name)
			if !slices.Contains(svc.EnvFile, "./secrets/"+devsecrets.ServerEnv) {
				bad(name, "no env_file ./secrets/%s: the NATS users' passwords", devsecrets.ServerEnv)
			}
		}
		for _, v := range svc.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, ".") && !composeFile(files, src) {
				bad(name, "mounts %s, which does not exist", src)
			}
		}
		for _, f := range svc.EnvFile {
			if !composeFile(files, f) {
				bad(name, "env_file %s does not exist", f)
			}
		}
		for _, p := range svc.Ports {
			if ip, host, _ := publishedPort(p); host != "" && ip != "127.0.0.1" {
				bad(name, "ports %s: published on every interface of the host; bind it to 127.0.0.1", p)
			}
		}
	}
	for name, decl := range cf.Secrets {
		if !composeFile(files, decl.File) {
			problems = append(problems, fmt.Sprintf("compose.yaml: secret %s: file %s does not exist", name, decl.File))
		}
	}
	workers := 0
	for name, svc := range cf.Services {
		if !svc.isFulfil() {
			continue
		}
		if err := checkArgs(svc.Command); err != nil {
			bad(name, "command %v: %v", svc.Command, err)
			continue
		}
		if role := commandRole(svc.Command[0]); role != "" {
			problems = append(problems, checkComposeLogin(cf.Secrets, name, svc, role)...)
		}
		if svc.Command[0] != "worker" {
			continue
		}
		workers++
		env := maps.Clone(imageEnv)
		for k, v := range svc.Environment {
			if !isSetting(k) {
				bad(name, "%s is not a fulfil setting", k)
			}
			env[k] = v
		}
		for _, p := range svc.Ports {
			_, _, port := publishedPort(p)
			if err := checkHTTPAddr(env["FULFIL_HTTP_ADDR"], port); err != nil {
				bad(name, "ports %s: %v", p, err)
			}
		}
		if d, err := time.ParseDuration(svc.StopGracePeriod); err != nil || d <= workerDrain {
			bad(name, "stop_grace_period %q does not leave the %v drain", svc.StopGracePeriod, workerDrain)
		}
		var urlHosts []string
		for _, u := range strings.Split(env["NATS_URL"], ",") {
			if pu, err := url.Parse(u); err == nil {
				urlHosts = append(urlHosts, pu.Hostname())
			}
		}
		if !sameSet(urlHosts, natsServers) {
			bad(name, "NATS_URL names %v, want every NATS server %v", urlHosts, natsServers)
		}
		secretFiles := map[string]string{}
		for _, s := range svc.Secrets {
			decl, ok := cf.Secrets[s]
			if !ok {
				bad(name, "secret %s is not declared", s)
			}
			secretFiles["/run/secrets/"+s] = strings.TrimSpace(files[path.Clean(decl.File)])
		}
		for k, v := range env {
			if _, ok := secretFiles[v]; strings.HasSuffix(k, "_FILE") && !ok {
				bad(name, "%s=%s is not one of its secrets", k, v)
			}
		}
		problems = append(problems, checkComposePartner(cf.Services, name, env, secretFiles)...)
	}
	if workers < 2 {
		problems = append(problems, fmt.Sprintf("compose.yaml: %d worker services, want at least 2", workers))
	}
	return problems
}

// checkComposeLogin reports a fulfil service that does not log in to NATS as the role of its
// command, with that role's password (a secret of its own) and inbox prefix.
func checkComposeLogin(secrets map[string]struct {
	File string `yaml:"file"`
}, name string, svc composeService, role string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("compose.yaml: service %s: ", name)+fmt.Sprintf(format, args...))
	}
	env := svc.Environment
	if env["FULFIL_NATS_USER"] != role {
		bad("FULFIL_NATS_USER %q, want %s: fulfil %s's role (nats/auth.conf)", env["FULFIL_NATS_USER"], role, svc.Command[0])
	}
	if inbox := env["FULFIL_NATS_INBOX_PREFIX"]; inbox != natsRoles[role] {
		bad("FULFIL_NATS_INBOX_PREFIX %q, want %q for user %s", inbox, natsRoles[role], role)
	}
	pw, ok := strings.CutPrefix(env["FULFIL_NATS_PASSWORD_FILE"], "/run/secrets/")
	if decl, declared := secrets[pw]; !ok || !slices.Contains(svc.Secrets, pw) || !declared || path.Clean(decl.File) != "secrets/"+devsecrets.PasswordFile(role) {
		bad("FULFIL_NATS_PASSWORD_FILE %q is not a secret of its own from ./secrets/%s", env["FULFIL_NATS_PASSWORD_FILE"], devsecrets.PasswordFile(role))
	}
	return problems
}

// checkComposePartner reports a worker whose partner settings do not reach the simulator service
// it names: wrong port, http refused, or credentials the simulator does not accept.
func checkComposePartner(services map[string]composeService, worker string, env, secretFiles map[string]string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("compose.yaml: service %s: ", worker)+fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(env["FULFIL_PARTNER_URL"])
	if err != nil {
		return []string{fmt.Sprintf("compose.yaml: service %s: FULFIL_PARTNER_URL: %v", worker, err)}
	}
	if insecure, _ := strconv.ParseBool(env["FULFIL_PARTNER_INSECURE"]); u.Scheme == "http" && !insecure {
		bad("plain http partner URL %s without FULFIL_PARTNER_INSECURE=true", u)
	}
	sim, ok := services[u.Hostname()]
	if !ok {
		bad("FULFIL_PARTNER_URL %s names no service", u)
		return problems
	}
	if !sim.isFulfil() || len(sim.Command) == 0 || sim.Command[0] != "partnersim" {
		return problems
	}
	if _, port, _ := net.SplitHostPort(sim.flag("addr", "")); port != u.Port() {
		bad("FULFIL_PARTNER_URL %s, but partnersim listens on %q", u, sim.flag("addr", ""))
	}
	id, secret := env["FULFIL_PARTNER_CLIENT_ID"], env["FULFIL_PARTNER_CLIENT_SECRET"]
	if f, ok := env["FULFIL_PARTNER_CLIENT_SECRET_FILE"]; ok {
		secret = secretFiles[f]
	}
	if id != sim.flag("client-id", partnertest.DefaultClientID) || secret != sim.flag("client-secret", partnertest.DefaultClientSecret) {
		bad("partner credentials are not the ones partnersim accepts")
	}
	return problems
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sSecurityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   bool   `yaml:"readOnlyRootFilesystem"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
	} `yaml:"capabilities"`
}

type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	StartupProbe    *k8sProbe          `yaml:"startupProbe"`
	LivenessProbe   *k8sProbe          `yaml:"livenessProbe"`
	ReadinessProbe  *k8sProbe          `yaml:"readinessProbe"`
	SecurityContext k8sSecurityContext `yaml:"securityContext"`
	Resources       struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

// port returns the number of a container port given by name or number, or 0.
func (c k8sContainer) port(nameOrNumber string) int {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || strconv.Itoa(p.ContainerPort) == nameOrNumber {
			return p.ContainerPort
		}
	}
	return 0
}

// command is the fulfil command the container runs (the image's CMD, worker, without args).
func (c k8sContainer) command() string {
	if len(c.Args) == 0 {
		return "worker"
	}
	return c.Args[0]
}

type k8sDeployment struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int                `yaml:"terminationGracePeriodSeconds"`
				AutomountServiceAccountToken  *bool              `yaml:"automountServiceAccountToken"`
				SecurityContext               k8sSecurityContext `yaml:"securityContext"`
				Containers                    []k8sContainer     `yaml:"containers"`
				Volumes                       []struct {
					Name   string `yaml:"name"`
					Secret struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Selector                 map[string]string `yaml:"selector"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Ports                    []struct {
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sLabelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `yaml:"key"`
		Operator string   `yaml:"operator"`
		Values   []string `yaml:"values"`
	} `yaml:"matchExpressions"`
}

// selects reports whether the selector selects a pod with labels (In, NotIn, Exists and
// DoesNotExist; an empty selector selects every pod).
func (s k8sLabelSelector) selects(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, has := labels[e.Key]
		ok := map[string]bool{"In": has && slices.Contains(e.Values, v), "NotIn": !has || !slices.Contains(e.Values, v),
			"Exists": has, "DoesNotExist": !has}[e.Operator]
		if !ok {
			return false
		}
	}
	return true
}

type k8sNetworkPolicy struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		PodSelector k8sLabelSelector `yaml:"podSelector"`
		PolicyTypes []string         `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				PodSelector       *k8sLabelSelector `yaml:"podSelector"`
				NamespaceSelector *k8sLabelSelector `yaml:"namespaceSelector"`
				IPBlock           any               `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port any `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

// k8sObjects is what checkK8s reads from the manifests, by kind.
type k8sObjects struct {
	configMaps  map[string]map[string]string // name → data
	secrets     map[string]map[string]string // name → key → value (stringData; data as given)
	deployments []k8sDeployment
	services    []k8sService
	pdbs        []k8sPDB
	netpols     []k8sNetworkPolicy
}

// decode adds the objects of one manifest, which may hold several documents.
func (o *k8sObjects) decode(text string) error {
	dec := yaml.NewDecoder(strings.NewReader(text))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		var head struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Data       map[string]string `yaml:"data"`
			StringData map[string]string `yaml:"stringData"`
		}
		if err := n.Decode(&head); err != nil {
			return err
		}
		var err error
		switch head.Kind {
		case "ConfigMap":
			o.configMaps[head.Metadata.Name] = head.Data
		case "Secret":
			s := map[string]string{}
			maps.Copy(s, head.Data)
			maps.Copy(s, head.StringData)
			o.secrets[head.Metadata.Name] = s
		case "Deployment":
			var d k8sDeployment
			err = n.Decode(&d)
			o.deployments = append(o.deployments, d)
		case "Service":
			var s k8sService
			err = n.Decode(&s)
			o.services = append(o.services, s)
		case "PodDisruptionBudget":
			var p k8sPDB
			err = n.Decode(&p)
			o.pdbs = append(o.pdbs, p)
		case "NetworkPolicy":
			var p k8sNetworkPolicy
			err = n.Decode(&p)
			o.netpols = append(o.netpols, p)
		}
		if err != nil {
			return err
		}
	}
}

// secretRef names one key of a Secret.
type secretRef struct{ secret, key string }

// commandDrain is how long each long-running fulfil command may take to stop after SIGTERM: a
// worker drains its sagas (workerDrain); `fulfil api` shuts its intake and then its endpoints
// down, 5 s each at most (serveAPI, startAPI).
var commandDrain = map[string]time.Duration{"worker": workerDrain, "api": 10 * time.Second}

// composeOnlySettings are settings compose.yaml sets for its partner simulator, which a
// deployment against the real partner portal must not copy.
var composeOnlySettings = []string{"FULFIL_PARTNER_INSECURE"}

// checkK8s returns what is wrong with the kustomize base in k8s/; imageEnv is what the image sets.
func checkK8s(files map[string]string, imageEnv map[string]string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, "k8s: "+fmt.Sprintf(format, args...)) }
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal([]byte(files["k8s/kustomization.yaml"]), &kust); err != nil {
		bad("kustomization.yaml: %v", err)
	}
	o := k8sObjects{configMaps: map[string]map[string]string{}, secrets: map[string]map[string]string{}}
	var manifests []string
	for name, text := range files {
		base, ok := strings.CutPrefix(name, "k8s/")
		if !ok || path.Ext(base) != ".yaml" || base == "kustomization.yaml" || name == natsHelmValues {
			continue
		}
		manifests = append(manifests, base)
		if err := o.decode(text); err != nil {
			bad("%s: %v", base, err)
		}
	}
	if !sameSet(kust.Resources, manifests) {
		bad("kustomization.yaml lists %v, the directory holds %v", kust.Resources, manifests)
	}
	for _, cm := range o.configMaps {
		for k := range cm {
			if !isSetting(k) {
				bad("ConfigMap key %s is not a fulfil setting", k)
			}
		}
	}
	if len(o.deployments) == 0 {
		bad("no Deployment")
	}
	problems = append(problems, checkNATSNetworkPolicy(o)...)
	problems = append(problems, checkNATSHelmValues(files, o)...)
	passwords := natsHelmPasswords(files)
	numericUser := regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`).MatchString(dockerfileUser(files["Dockerfile"]))
	commandEnvs := map[string]map[string]string{} // command → the environment of its container
	for _, d := range o.deployments {
		pod := d.Spec.Template
		name := d.Metadata.Name
		if !subset(d.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
			bad("Deployment %s: selector %v does not select its pods %v", name, d.Spec.Selector.MatchLabels, pod.Metadata.Labels)
		}
		sc := pod.Spec.SecurityContext
		if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			bad("Deployment %s: no runAsNonRoot: true in the pod's securityContext", name)
		} else if !numericUser && (sc.RunAsUser == nil || *sc.RunAsUser == 0) {
			bad("Deployment %s: the image's USER %q is a name, which the kubelet cannot check against runAsNonRoot: set runAsUser (65532, distroless nonroot)",
				name, dockerfileUser(files["Dockerfile"]))
		}
		if tok := pod.Spec.AutomountServiceAccountToken; tok == nil || *tok {
			bad("Deployment %s: mounts a service account token fulfil never uses (automountServiceAccountToken: false)", name)
		}
		secretVolumes := map[string]map[string]secretRef{} // mount path → file → the Secret key mounted there
		used := map[string]bool{}                          // mount path/file read by a _FILE setting
		for _, c := range pod.Spec.Containers {
			for _, m := range c.VolumeMounts {
				for _, v := range pod.Spec.Volumes {
					if v.Name != m.Name || v.Secret.SecretName == "" {
						continue
					}
					if secretVolumes[m.MountPath] == nil {
						secretVolumes[m.MountPath] = map[string]secretRef{}
					}
					keys := o.secrets[v.Secret.SecretName]
					if len(v.Secret.Items) == 0 {
						for k := range keys {
							secretVolumes[m.MountPath][k] = secretRef{v.Secret.SecretName, k}
						}
					}
					for _, it := range v.Secret.Items {
						if _, ok := keys[it.Key]; ok {
							secretVolumes[m.MountPath][it.Path] = secretRef{v.Secret.SecretName, it.Key}
						}
					}
				}
			}
			env, ps := checkK8sContainer(c, o, imageEnv, secretVolumes, passwords)
			problems = append(problems, ps...)
			for k, v := range env {
				if strings.HasSuffix(k, "_FILE") {
					used[v] = true
				}
			}
			commandEnvs[c.command()] = env
		}
		for dir, mounted := range secretVolumes {
			for file, ref := range mounted {
				if !used[path.Join(dir, file)] {
					bad("Deployment %s mounts key %s of Secret %s (%s), which no _FILE setting reads", name, ref.key, ref.secret, path.Join(dir, file))
				}
			}
		}
		if len(pod.Spec.Containers) > 0 {
			if drain := commandDrain[pod.Spec.Containers[0].command()]; time.Duration(pod.Spec.TerminationGracePeriodSeconds)*time.Second <= drain {
				bad("Deployment %s: terminationGracePeriodSeconds %d does not leave the %v drain", name, pod.Spec.TerminationGracePeriodSeconds, drain)
			}
		}
		problems = append(problems, checkK8sPodPolicy(d, o)...)
	}
	for _, s := range o.services {
		var selected []k8sDeployment
		for _, d := range o.deployments {
			if subset(s.Spec.Selector, d.Spec.Template.Metadata.Labels) {
				selected = append(selected, d)
			}
		}
		switch {
		case len(selected) == 0:
			bad("Service selector %v of %s selects the pods of no Deployment", s.Spec.Selector, s.Metadata.Name)
		case len(selected) > 1:
			bad("Service %s selects the pods of %d Deployments", s.Metadata.Name, len(selected))
		}
		for _, d := range selected {
			for _, p := range s.Spec.Ports {
				cs := d.Spec.Template.Spec.Containers
				i := slices.IndexFunc(cs, func(c k8sContainer) bool { return c.port(p.TargetPort) != 0 })
				if i < 0 {
					bad("Service targetPort %s is no container port", p.TargetPort)
					continue
				}
				if s.Spec.PublishNotReadyAddresses && cs[i].port(p.TargetPort) == cs[i].port("api") {
					bad("Service %s sends purchases (targetPort %s) to pods that are not ready: publishNotReadyAddresses", s.Metadata.Name, p.TargetPort)
				}
			}
		}
	}
	for _, p := range o.pdbs {
		selected := 0
		for _, d := range o.deployments {
			if !subset(p.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
				continue
			}
			selected++
			if p.Spec.MinAvailable >= d.Spec.Replicas {
				bad("PodDisruptionBudget minAvailable %d with %d replicas blocks every eviction", p.Spec.MinAvailable, d.Spec.Replicas)
			}
		}
		if selected == 0 {
			bad("PodDisruptionBudget selector %v of %s selects the pods of no Deployment", p.Spec.Selector.MatchLabels, p.Metadata.Name)
		}
	}
	// The workers and the intake talk about the same streams: same servers, subjects, replicas.
	if w, a := commandEnvs["worker"], commandEnvs["api"]; w != nil && a != nil {
		for _, k := range []string{"NATS_URL", "FULFIL_SUBJECT_PREFIX", "FULFIL_REPLICAS"} {
			if w[k] != a[k] {
				bad("%s differs between fulfil worker (%q) and fulfil api (%q)", k, w[k], a[k])
			}
		}
	}
	problems = append(problems, checkComposeMatchesK8s(files, commandEnvs)...)
	return problems
}

// checkComposeMatchesK8s reports a setting that compose.yaml gives a fulfil command and the
// Kubernetes base does not (a setting and its _FILE variant count as one).
func checkComposeMatchesK8s(files map[string]string, k8sEnvs map[string]map[string]string) []string {
	var cf struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(files["compose.yaml"]), &cf); err != nil {
		return nil // checkCompose reports it
	}
	var problems []string
	for name, svc := range cf.Services {
		if !svc.isFulfil() || len(svc.Command) == 0 {
			continue
		}
		env, ok := k8sEnvs[svc.Command[0]]
		if !ok {
			continue
		}
		for k := range svc.Environment {
			base := strings.TrimSuffix(k, "_FILE")
			if _, set := env[base]; set || slices.Contains(composeOnlySettings, k) {
				continue
			}
			if _, set := env[base+"_FILE"]; !set {
				problems = append(problems, fmt.Sprintf("k8s: compose.yaml's fulfil %s (service %s) sets %s, the Kubernetes one does not", svc.Command[0], name, k))
			}
		}
	}
	slices.Sort(problems)
	return slices.Compact(problems)
}

// checkK8sPodPolicy reports fulfil pods that no NetworkPolicy restricts, or whose policies admit
// every port, a port the pods do not have, or not a port they serve.
func checkK8sPodPolicy(d k8sDeployment, o k8sObjects) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, "k8s: "+fmt.Sprintf(format, args...)) }
	pod := d.Spec.Template
	admitted := map[int]bool{}
	selected := false
	for _, np := range o.netpols {
		if !np.Spec.PodSelector.selects(pod.Metadata.Labels) || !slices.Contains(np.Spec.PolicyTypes, "Ingress") {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				bad("NetworkPolicy %s admits every port of the pods of Deployment %s", np.Metadata.Name, d.Metadata.Name)
			}
			for _, p := range rule.Ports {
				n := 0
				for _, c := range pod.Spec.Containers {
					n = max(n, c.port(fmt.Sprint(p.Port)))
				}
				if n == 0 {
					bad("NetworkPolicy %s admits port %v, which the pods of Deployment %s do not have", np.Metadata.Name, p.Port, d.Metadata.Name)
				}
				admitted[n] = true
			}
		}
	}
	if !selected {
		return append(problems, fmt.Sprintf("k8s: no NetworkPolicy selects the pods of Deployment %s: they take connections on every port", d.Metadata.Name))
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if !admitted[p.ContainerPort] {
				bad("no NetworkPolicy admits port %s (%d) of the pods of Deployment %s", p.Name, p.ContainerPort, d.Metadata.Name)
			}
		}
	}
	return problems
}

// natsHelmPasswords returns the Secret key each NATS role's password comes from on the servers
// (the Helm values' container.env).
func natsHelmPasswords(files map[string]string) map[string]secretRef {
	var v struct {
		Container struct {
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	_ = yaml.Unmarshal([]byte(files[natsHelmValues]), &v) // checkNATSHelmValues reports errors
	refs := map[string]secretRef{}
	for role := range natsRoles {
		ref := v.Container.Env[devsecrets.PasswordEnv(role)].ValueFrom.SecretKeyRef
		refs[role] = secretRef{ref.Name, ref.Key}
	}
	return refs
}

// dockerfileUser returns the Dockerfile's (last) USER.
func dockerfileUser(text string) string {
	user := ""
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "USER "); ok {
			user = strings.TrimSpace(rest)
		}
	}
	return user
}

// natsPodLabels are the labels of the NATS pods of the Helm chart (nats-helm-values.yaml).
var natsPodLabels = map[string]string{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats", "app.kubernetes.io/component": "nats"}

// checkNATSNetworkPolicy reports NATS client ports open to more than the workers and the HTTP
// intake, or closed to the workers or to the intake (when the base has one).
func checkNATSNetworkPolicy(o k8sObjects) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, "k8s: "+fmt.Sprintf(format, args...)) }
	fulfilPod := func(component string) map[string]string {
		return map[string]string{"app.kubernetes.io/name": "fulfil", "app.kubernetes.io/component": component}
	}
	selected, workersAllowed, intakeAllowed := false, false, false
	for _, np := range o.netpols {
		if !np.Spec.PodSelector.selects(natsPodLabels) {
			continue
		}
		selected = true
		for _, rule := range np.Spec.Ingress {
			client := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				client = client || fmt.Sprint(p.Port) == "4222" || fmt.Sprint(p.Port) == "client"
			}
			if !client {
				continue
			}
			if len(rule.From) == 0 {
				bad("NetworkPolicy %s lets every pod reach the NATS client port", np.Metadata.Name)
			}
			for _, peer := range rule.From {
				switch {
				case peer.PodSelector == nil || peer.IPBlock != nil || peer.NamespaceSelector != nil:
					bad("NetworkPolicy %s lets more than pods of this namespace reach the NATS client port", np.Metadata.Name)
				case peer.PodSelector.selects(fulfilPod("other")) || peer.PodSelector.selects(map[string]string{}):
					bad("NetworkPolicy %s lets pods other than the workers and the intake reach the NATS client port", np.Metadata.Name)
				default:
					workersAllowed = workersAllowed || peer.PodSelector.selects(fulfilPod("worker"))
					intakeAllowed = intakeAllowed || peer.PodSelector.selects(fulfilPod("intake"))
				}
			}
		}
	}
	hasIntake := slices.ContainsFunc(o.deployments, func(d k8sDeployment) bool {
		return subset(fulfilPod("intake"), d.Spec.Template.Metadata.Labels)
	})
	switch {
	case !selected:
		bad("no NetworkPolicy selects the NATS pods %v", natsPodLabels)
	case !workersAllowed:
		bad("no NetworkPolicy lets the workers reach the NATS client port")
	case hasIntake && !intakeAllowed:
		bad("no NetworkPolicy lets the intake reach the NATS client port")
	}
	return problems
}

// checkNATSHelmValues reports Helm values of the NATS chart that miss what fulfil needs: a
// 3-node cluster with route TLS, JetStream on a file store, the roles of auth.conf and the
// users' passwords from a Secret of the base.
func checkNATSHelmValues(files map[string]string, o k8sObjects) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, natsHelmValues+": "+fmt.Sprintf(format, args...))
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
				TLS      struct {
					Enabled    bool           `yaml:"enabled"`
					SecretName string         `yaml:"secretName"`
					Merge      map[string]any `yaml:"merge"`
				} `yaml:"tls"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
					PVC     struct {
						Size string `yaml:"size"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
				Merge map[string]any `yaml:"merge"`
			} `yaml:"jetstream"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"config"`
		Container struct {
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	if err := yaml.Unmarshal([]byte(files[natsHelmValues]), &v); err != nil {
		return []string{natsHelmValues + ": " + err.Error()}
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas < 3 {
		bad("not a cluster of at least 3 nodes (JetStream R3)")
	}
	if !c.Cluster.TLS.Enabled || c.Cluster.TLS.SecretName == "" || c.Cluster.TLS.Merge["verify"] != true {
		bad("cluster routes without mutual TLS (tls.enabled, secretName, merge.verify: true)")
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || c.JetStream.FileStore.PVC.Size == "" {
		bad("no JetStream file store with a PVC size")
	}
	if _, ok := c.JetStream.Merge["sync_interval"]; !ok {
		bad("no sync_interval: the durability choice is not written down")
	}
	included := false
	for k, val := range c.Merge {
		included = included || (strings.HasSuffix(k, "$include") && val == path.Base(natsAuthConf))
	}
	if !included {
		bad("config.merge does not include %s: the servers would take anonymous clients", path.Base(natsAuthConf))
	}
	if !strings.Contains(files[natsHelmValues], "--set-file 'configMap.merge.data.auth\\.conf="+"deploy/"+natsAuthConf+"'") {
		bad("does not say how %s gets into the ConfigMap (--set-file)", natsAuthConf)
	}
	for role := range natsRoles {
		ref := v.Container.Env[devsecrets.PasswordEnv(role)].ValueFrom.SecretKeyRef
		if _, ok := o.secrets[ref.Name][ref.Key]; !ok {
			bad("container.env %s is not a key of a Secret of the base", devsecrets.PasswordEnv(role))
		}
	}
	return problems
}

// checkK8sContainer reports what is wrong with one fulfil container, and returns its
// environment (the image's, then its ConfigMaps', then its own); secretVolumes maps the pod's
// secret mount paths to the Secret keys mounted there, passwords each NATS role to the Secret key
// the NATS servers read its password from.
func checkK8sContainer(c k8sContainer, o k8sObjects, imageEnv map[string]string, secretVolumes map[string]map[string]secretRef,
	passwords map[string]secretRef) (map[string]string, []string) {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, "k8s: container: "+fmt.Sprintf(format, args...))
	}
	if err := checkArgs(c.Args); err != nil {
		bad("args %v: %v", c.Args, err)
	}
	command := c.command()
	ownSettings := commandEnv(command)
	env := maps.Clone(imageEnv)
	for _, ef := range c.EnvFrom {
		cm, ok := o.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			bad("envFrom ConfigMap %q does not exist", ef.ConfigMapRef.Name)
		}
		for k := range cm {
			if isSetting(k) && !slices.Contains(nonFulfilEnv, k) && !slices.Contains(ownSettings, k) {
				bad("ConfigMap %s: %s is not a setting of fulfil %s", ef.ConfigMapRef.Name, k, command)
			}
		}
		maps.Copy(env, cm)
	}
	mountedFile := func(p string) (secretRef, bool) {
		ref, ok := secretVolumes[path.Dir(p)][path.Base(p)]
		return ref, ok
	}
	for _, e := range c.Env {
		if !isSetting(e.Name) {
			bad("env %s is not a fulfil setting", e.Name)
		} else if !slices.Contains(nonFulfilEnv, e.Name) && !slices.Contains(ownSettings, e.Name) {
			bad("env %s is not a setting of fulfil %s", e.Name, command)
		}
		env[e.Name] = e.Value
		if !strings.HasSuffix(e.Name, "_FILE") {
			continue
		}
		if _, ok := mountedFile(e.Value); !ok {
			bad("%s=%s is not a key of a mounted Secret", e.Name, e.Value)
		}
	}
	if sc := c.SecurityContext; !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Contains(sc.Capabilities.Drop, "ALL") {
		bad("fulfil %s: securityContext without readOnlyRootFilesystem: true, allowPrivilegeEscalation: false and capabilities drop ALL", command)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		bad("fulfil %s: no resource requests (cpu, memory) or memory limit", command)
	}
	httpPort := c.port("http")
	if err := checkHTTPAddr(env["FULFIL_HTTP_ADDR"], httpPort); err != nil {
		bad("%v", err)
	}
	if slices.Contains(ownSettings, "FULFIL_API_ADDR") {
		addr, set := env["FULFIL_API_ADDR"]
		if !set {
			addr = defaultAPIAddr
		}
		if command == "api" {
			if err := checkListenAddr("FULFIL_API_ADDR", addr, c.port("api")); err != nil {
				bad("%v (the container port named api)", err)
			}
		}
		if addr != "" && !loopbackAddr(addr) && env["FULFIL_API_KEYS_FILE"] == "" {
			bad("fulfil %s: FULFIL_API_ADDR %q without FULFIL_API_KEYS_FILE: it would not start", command, addr)
		}
	}
	if f := env["FULFIL_API_KEYS_FILE"]; f != "" {
		if ref, ok := mountedFile(f); ok {
			if keys, err := api.ParseKeys([]byte(o.secrets[ref.secret][ref.key])); err == nil && keys.Len() > 0 {
				bad("Secret %s key %s holds %d usable API key(s): the base must not ship a key anyone can read in git", ref.secret, ref.key, keys.Len())
			}
		}
	}
	if role := commandRole(command); role != "" {
		if env["FULFIL_NATS_USER"] != role || env["FULFIL_NATS_INBOX_PREFIX"] != natsRoles[role] || env["FULFIL_NATS_PASSWORD_FILE"] == "" {
			bad("NATS login: FULFIL_NATS_USER %q, FULFIL_NATS_INBOX_PREFIX %q, FULFIL_NATS_PASSWORD_FILE %q; want user %s, inbox %q and its password file",
				env["FULFIL_NATS_USER"], env["FULFIL_NATS_INBOX_PREFIX"], env["FULFIL_NATS_PASSWORD_FILE"], role, natsRoles[role])
		}
		if ref, ok := mountedFile(env["FULFIL_NATS_PASSWORD_FILE"]); ok && ref != passwords[role] {
			bad("FULFIL_NATS_PASSWORD_FILE is key %s of Secret %s, but the NATS servers read user %s's password from key %s of Secret %s",
				ref.key, ref.secret, role, passwords[role].key, passwords[role].secret)
		}
	}
	for _, pr := range []struct {
		name  string
		probe *k8sProbe
		want  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		switch {
		case pr.probe == nil && pr.name == "startupProbe":
		case pr.probe == nil:
			bad("no %s", pr.name)
		case pr.probe.HTTPGet.Path != pr.want:
			bad("%s path %q, want %s", pr.name, pr.probe.HTTPGet.Path, pr.want)
		case c.port(pr.probe.HTTPGet.Port) != httpPort:
			bad("%s port %s is not the http port %d", pr.name, pr.probe.HTTPGet.Port, httpPort)
		}
	}
	return env, problems
}

// subset reports whether every label of sel is in labels (and sel is not empty).
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

func TestDeployMatchesTheCode(t *testing.T) {
	setNATSPasswords(t)
	for _, p := range deployProblems(deployTree(t)) {
		t.Error(p)
	}
}

// Every check catches the drift it exists for.
func TestDeployChecksCatchDrift(t *testing.T) {
	type edit struct{ file, old, new string }
	tests := []struct {
		name string
		give edit
		want string
	}{
		{"dockerfile builds elsewhere", edit{"Dockerfile", "./cmd/fulfil\n", "./cmd/other\n"}, "does not build ./cmd/fulfil"},
		{"dockerfile cmd", edit{"Dockerfile", `CMD ["worker"]`, `CMD ["run"]`}, `CMD: "run" is not a fulfil command`},
		{"dockerfile root", edit{"Dockerfile", "USER nonroot:nonroot", "USER root"}, `USER is "root"`},
		{"dockerfile env", edit{"Dockerfile", "FULFIL_LOG_LEVEL=", "FULFIL_LOGLEVEL="}, "ENV FULFIL_LOGLEVEL is not a fulfil setting"},
		{"dockerfile loopback", edit{"Dockerfile", "FULFIL_HTTP_ADDR=0.0.0.0:8080", "FULFIL_HTTP_ADDR=127.0.0.1:8080"}, "does not listen on every interface"},
		{"dockerfile expose", edit{"Dockerfile", "EXPOSE 8080", "EXPOSE 9090"}, "is not on the container port 9090"},

		{"compose env", edit{"compose.yaml", "FULFIL_CONCURRENCY:", "FULFIL_CONCURENCY:"}, "FULFIL_CONCURENCY is not a fulfil setting"},
		{"compose command", edit{"compose.yaml", `command: ["worker"]`, `command: ["serve"]`}, `"serve" is not a fulfil command`},
		{"compose flag", edit{"compose.yaml", `"--error-rate"`, `"--errors"`}, "fulfil partnersim has no flag -errors"},
		{"compose port", edit{"compose.yaml", `"127.0.0.1:8081:8080"`, `"127.0.0.1:8081:9090"`}, "is not on the container port 9090"},
		{"compose port on every interface", edit{"compose.yaml", `"127.0.0.1:8081:8080"`, `"8081:8080"`}, "ports 8081:8080: published on every interface"},
		{"compose nats published", edit{"compose.yaml", `["127.0.0.1:4222:4222"]`, `["4222:4222"]`}, "service nats-1: ports 4222:4222: published on every interface"},
		{"compose nats without passwords", edit{"compose.yaml", "  env_file: [./secrets/nats-server.env]\n", ""}, "no env_file ./secrets/nats-server.env"},
		{"compose worker as producer", edit{"compose.yaml", "FULFIL_NATS_USER: worker", "FULFIL_NATS_USER: producer"}, `FULFIL_NATS_USER "producer", want worker`},
		{"compose operator inbox", edit{"compose.yaml", "FULFIL_NATS_INBOX_PREFIX: _INBOX_operator", "FULFIL_NATS_INBOX_PREFIX: _INBOX"}, `service operator: FULFIL_NATS_INBOX_PREFIX "_INBOX", want "_INBOX_operator"`},
		{"compose shared password", edit{"compose.yaml", "/run/secrets/intake_nats_password", "/run/secrets/worker_nats_password"}, "service intake: FULFIL_NATS_PASSWORD_FILE"},
		{"compose generated secret", edit{"compose.yaml", "./secrets/api-keys", "./secrets/api-key.txt"}, "file ./secrets/api-key.txt does not exist"},
		{"compose nats server left out", edit{"compose.yaml", ",nats://nats-3:4222", ""}, "want every NATS server"},
		{"compose partner port", edit{"compose.yaml", "http://partnersim:8089", "http://partnersim:8090"}, "but partnersim listens on"},
		{"compose insecure", edit{"compose.yaml", `FULFIL_PARTNER_INSECURE: "true"`, `FULFIL_PARTNER_INSECURE: "false"`}, "without FULFIL_PARTNER_INSECURE=true"},
		{"compose client id", edit{"compose.yaml", "FULFIL_PARTNER_CLIENT_ID: fulfil-sim", "FULFIL_PARTNER_CLIENT_ID: other"}, "not the ones partnersim accepts"},
		{"compose client secret", edit{"partner-client-secret.txt", "fulfil-sim-secret", "other"}, "not the ones partnersim accepts"},
		{"compose secret undeclared", edit{"compose.yaml", "secrets: [partner_client_secret, worker_nats_password]", "secrets: [partner_secret, worker_nats_password]"}, "secret partner_secret is not declared"},
		{"compose secret path", edit{"compose.yaml", "/run/secrets/partner_client_secret", "/run/secrets/other"}, "is not one of its secrets"},
		{"compose mount", edit{"compose.yaml", "- ./nats/auth.conf:", "- ./nats/users.conf:"}, "mounts ./nats/users.conf, which does not exist"},
		{"compose cert mount", edit{"compose.yaml", "- ./secrets/nats-route.pem:", "- ./secrets/route.pem:"}, "mounts ./secrets/route.pem, which does not exist"},
		{"compose grace", edit{"compose.yaml", "stop_grace_period: 45s", "stop_grace_period: 10s"}, "stop_grace_period \"10s\""},
		{"compose one worker", edit{"compose.yaml", "  worker-2:\n    <<: *worker\n", "  worker-2:\n    <<: *worker\n    command: [\"status\"]\n"}, "1 worker services"},

		{"configmap key", edit{"k8s/configmap.yaml", "FULFIL_LOG_LEVEL:", "FULFIL_LOGLEVEL:"}, "ConfigMap key FULFIL_LOGLEVEL is not a fulfil setting"},
		{"configmap port", edit{"k8s/configmap.yaml", "0.0.0.0:8080", "0.0.0.0:9090"}, "is not on the container port 8080"},
		{"configmap loopback", edit{"k8s/configmap.yaml", "0.0.0.0:8080", "127.0.0.1:8080"}, "does not listen on every interface"},
		{"deployment env", edit{"k8s/deployment.yaml", "name: GOMEMLIMIT", "name: GO_MEMLIMIT"}, "env GO_MEMLIMIT is not a fulfil setting"},
		{"deployment envFrom", edit{"k8s/deployment.yaml", "name: fulfil-config", "name: fulfil-settings"}, `ConfigMap "fulfil-settings" does not exist`},
		{"deployment args", edit{"k8s/deployment.yaml", `args: ["worker"]`, `args: ["serve"]`}, `"serve" is not a fulfil command`},
		{"deployment flag", edit{"k8s/deployment.yaml", `args: ["worker"]`, `args: ["worker", "--workers", "2"]`}, "fulfil worker has no flag -workers"},
		{"readiness path", edit{"k8s/deployment.yaml", "path: /readyz", "path: /ready"}, `readinessProbe path "/ready"`},
		{"liveness missing", edit{"k8s/deployment.yaml", "livenessProbe:", "livenessProbeX:"}, "no livenessProbe"},
		{"probe port", edit{"k8s/deployment.yaml", "containerPort: 8080", "containerPort: 9090"}, "is not on the container port 9090"},
		{"probe port name", edit{"k8s/deployment.yaml", "path: /healthz\n              port: http\n            periodSeconds: 10", "path: /healthz\n              port: metrics\n            periodSeconds: 10"}, "livenessProbe port metrics"},
		{"secret key renamed", edit{"k8s/secret.yaml", "client-secret:", "secret:"}, "FULFIL_PARTNER_CLIENT_SECRET_FILE=/var/run/secrets/fulfil/client-secret is not a key"},
		{"secret mount moved", edit{"k8s/deployment.yaml", "mountPath: /var/run/secrets/fulfil", "mountPath: /secrets"}, "is not a key of a mounted Secret"},
		{"termination grace", edit{"k8s/deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30"}, "terminationGracePeriodSeconds 30"},
		{"service selector", edit{"k8s/service.yaml", "component: worker\n  publish", "component: workers\n  publish"}, "Service selector"},
		{"service port", edit{"k8s/service.yaml", "targetPort: http", "targetPort: metrics"}, "Service targetPort metrics is no container port"},
		{"pdb blocks evictions", edit{"k8s/pdb.yaml", "minAvailable: 1", "minAvailable: 2"}, "blocks every eviction"},
		{"unlisted manifest", edit{"k8s/kustomization.yaml", "  - pdb.yaml\n", ""}, "kustomization.yaml lists"},
		{"nats payload", edit{"nats/nats.conf", "max_payload: 1MB", "max_payload: 32KB"}, "nats/nats.conf: max_payload 32768 is below"},
		{"nats sync interval", edit{"nats/nats.conf", `sync_interval: "2m"`, ""}, "nats/nats.conf: no sync_interval"},
		{"nats without jetstream", edit{"nats/nats.conf", "jetstream {", "jetstream {\n  enabled: false"}, "nats/nats.conf: no jetstream block"},
		{"nats without cluster", edit{"nats/nats.conf", "cluster {\n  name: fulfil", "cluster {"}, "nats/nats.conf: no cluster block"},
		{"nats typo", edit{"nats/nats.conf", "max_file_store:", "max_filestore:"}, `unknown field "max_filestore"`},
		{"nats routes without a CA", edit{"nats/nats.conf", `ca_file: "/etc/nats/certs/nats-ca.pem"`, ""}, "cluster routes without mutual TLS"},
		{"nats route cert", edit{"nats/nats.conf", "/etc/nats/certs/nats-route.pem", "/etc/nats/certs/route.pem"}, "nats/nats.conf: "},
		{"nats without auth", edit{"nats/nats.conf", "include auth.conf", ""}, "takes anonymous clients"},
		{"nats anonymous user", edit{"nats/nats.conf", "include auth.conf", "include auth.conf\nno_auth_user: producer"}, "takes anonymous clients"},
		{"auth role missing", edit{"nats/auth.conf", "{ user: operator,", "{ user: admin,"}, "no user operator"},
		{"auth role unrestricted", edit{"nats/auth.conf", `subscribe = { allow = ["_INBOX.>"] }`, ""}, "user producer may publish or subscribe to anything"},
		{"auth password inline", edit{"nats/auth.conf", "password: $WORKER_NATS_PASSWORD", "password: changeme"}, "user worker's password is not $WORKER_NATS_PASSWORD"},
		{"auth shared inbox", edit{"nats/auth.conf", `subscribe = { allow = ["_INBOX_operator.>"] }`, `subscribe = { allow = ["_INBOX.>"] }`}, "user operator must subscribe to its own inbox"},
		{"k8s worker login", edit{"k8s/configmap.yaml", "FULFIL_NATS_USER: worker", "FULFIL_NATS_USER: operator"}, "NATS login"},
		{"k8s password not mounted", edit{"k8s/deployment.yaml", "{key: worker-password, path: worker-password}", "{key: worker-password, path: password}"}, "FULFIL_NATS_PASSWORD_FILE=/var/run/secrets/fulfil-nats/worker-password is not a key"},
		{"netpol missing", edit{"k8s/networkpolicy.yaml", "      app.kubernetes.io/name: nats\n  policyTypes", "      app.kubernetes.io/name: nats-other\n  policyTypes"}, "no NetworkPolicy selects the NATS pods"},
		{"netpol open", edit{"k8s/networkpolicy.yaml", "    - from:\n        - podSelector:\n            matchExpressions:", "    - from:\n        - namespaceSelector: {}\n          podSelector:\n            matchExpressions:"}, "more than pods of this namespace"},
		{"netpol any fulfil pod", edit{"k8s/networkpolicy.yaml", "values: [worker, intake]", "values: [worker, intake, other]"}, "pods other than the workers and the intake"},
		{"netpol workers shut out", edit{"k8s/networkpolicy.yaml", "values: [worker, intake]", "values: [intake]"}, "no NetworkPolicy lets the workers reach"},
		{"helm without auth", edit{"k8s/nats-helm-values.yaml", "00$include: auth.conf", "00$include: other.conf"}, "does not include auth.conf"},
		{"helm single node", edit{"k8s/nats-helm-values.yaml", "replicas: 3", "replicas: 1"}, "not a cluster of at least 3 nodes"},
		{"helm routes plain", edit{"k8s/nats-helm-values.yaml", "verify: true", "verify: false"}, "cluster routes without mutual TLS"},
		{"helm password secret", edit{"k8s/nats-helm-values.yaml", "key: operator-password", "key: operator"}, "OPERATOR_NATS_PASSWORD is not a key"},
		{"helm no file store", edit{"k8s/nats-helm-values.yaml", "size: 10Gi", "size: \"\""}, "no JetStream file store"},
		{"manifest does not parse", edit{"k8s/pdb.yaml", "minAvailable: 1", "minAvailable: [1"}, "pdb.yaml: yaml:"},
		{"non-numeric user", edit{"k8s/deployment.yaml", "        runAsUser: 65532\n", ""}, `the image's USER "nonroot:nonroot" is a name`},
		{"service account token", edit{"k8s/deployment.yaml", "automountServiceAccountToken: false", "automountServiceAccountToken: true"}, "service account token"},
		{"worker serves an intake", edit{"k8s/configmap.yaml", `FULFIL_API_ADDR: ""`, "FULFIL_API_ADDR: 0.0.0.0:8081"}, `fulfil worker: FULFIL_API_ADDR "0.0.0.0:8081" without FULFIL_API_KEYS_FILE`},
		{"worker mounts more than it reads", edit{"k8s/deployment.yaml", "            items:\n              - {key: worker-password, path: worker-password}\n", ""}, "mounts key operator-password of Secret fulfil-nats"},

		{"intake unlisted", edit{"k8s/kustomization.yaml", "  - intake.yaml\n", ""}, "kustomization.yaml lists"},
		{"intake args", edit{"k8s/intake.yaml", `args: ["api"]`, `args: ["api", "--workers", "2"]`}, "fulfil api has no flag -workers"},
		{"intake as worker", edit{"k8s/configmap.yaml", "FULFIL_NATS_USER: intake", "FULFIL_NATS_USER: worker"}, `NATS login: FULFIL_NATS_USER "worker"`},
		{"intake inbox", edit{"k8s/configmap.yaml", "FULFIL_NATS_INBOX_PREFIX: _INBOX_intake", "FULFIL_NATS_INBOX_PREFIX: _INBOX"}, "want user intake, inbox \"_INBOX_intake\""},
		{"intake with the worker's password", edit{"k8s/intake.yaml", "{key: intake-password, path: intake-password}", "{key: worker-password, path: intake-password}"},
			"key worker-password of Secret fulfil-nats, but the NATS servers read user intake's password from key intake-password"},
		{"intake mounts every password", edit{"k8s/intake.yaml", "            items:\n              - {key: intake-password, path: intake-password}\n", ""}, "mounts key worker-password of Secret fulfil-nats"},
		{"intake keys not mounted", edit{"k8s/intake.yaml", "mountPath: /var/run/secrets/fulfil-api", "mountPath: /var/run/secrets/api"}, "FULFIL_API_KEYS_FILE=/var/run/secrets/fulfil-api/api-keys is not a key"},
		{"intake without keys", edit{"k8s/intake.yaml", "            - name: FULFIL_API_KEYS_FILE\n              value: /var/run/secrets/fulfil-api/api-keys\n", ""},
			`fulfil api: FULFIL_API_ADDR "0.0.0.0:8081" without FULFIL_API_KEYS_FILE`},
		{"intake ships a key", edit{"k8s/secret.yaml", "    # PLACEHOLDER: replace this line with the API keys, one per line.\n", "    0123456789abcdef0123456789abcdef\n"}, "holds 1 usable API key"},
		{"intake api port", edit{"k8s/configmap.yaml", "FULFIL_API_ADDR: 0.0.0.0:8081", "FULFIL_API_ADDR: 0.0.0.0:9091"}, `FULFIL_API_ADDR "0.0.0.0:9091" is not on the container port 8081`},
		{"intake api loopback", edit{"k8s/configmap.yaml", "FULFIL_API_ADDR: 0.0.0.0:8081", "FULFIL_API_ADDR: 127.0.0.1:8081"}, `FULFIL_API_ADDR "127.0.0.1:8081" does not listen on every interface`},
		{"intake http port", edit{"k8s/intake.yaml", "containerPort: 8080", "containerPort: 9090"}, "is not on the container port 9090"},
		{"intake readiness", edit{"k8s/intake.yaml", "path: /readyz", "path: /healthz"}, `readinessProbe path "/healthz"`},
		{"intake worker setting", edit{"k8s/configmap.yaml", "FULFIL_API_ADDR: 0.0.0.0:8081", "FULFIL_API_ADDR: 0.0.0.0:8081\n  FULFIL_CONCURRENCY: \"8\""}, "FULFIL_CONCURRENCY is not a setting of fulfil api"},
		{"intake env of the worker", edit{"k8s/intake.yaml", "name: FULFIL_NATS_PASSWORD_FILE", "name: FULFIL_PARTNER_CLIENT_SECRET_FILE"}, "env FULFIL_PARTNER_CLIENT_SECRET_FILE is not a setting of fulfil api"},
		{"intake other subjects", edit{"k8s/configmap.yaml", "FULFIL_SUBJECT_PREFIX: fulfil", "FULFIL_SUBJECT_PREFIX: shop"}, "FULFIL_SUBJECT_PREFIX differs between fulfil worker"},
		{"intake other servers", edit{"k8s/configmap.yaml", "NATS_URL: nats://nats:4222", "NATS_URL: nats://nats.other:4222"}, "NATS_URL differs"},
		{"intake writable", edit{"k8s/intake.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"}, "fulfil api: securityContext without readOnlyRootFilesystem"},
		{"intake as root", edit{"k8s/intake.yaml", "runAsNonRoot: true", "runAsNonRoot: false"}, "Deployment fulfil-intake: no runAsNonRoot"},
		{"intake unbounded", edit{"k8s/intake.yaml", "              memory: 256Mi\n", ""}, "fulfil api: no resource requests (cpu, memory) or memory limit"},
		{"intake grace", edit{"k8s/intake.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 5"}, "Deployment fulfil-intake: terminationGracePeriodSeconds 5 does not leave the 10s drain"},
		{"intake service selector", edit{"k8s/intake.yaml", "component: intake\n  ports:", "component: intakes\n  ports:"}, "Service selector map[app.kubernetes.io/component:intakes app.kubernetes.io/name:fulfil] of fulfil-intake"},
		{"intake service port", edit{"k8s/intake.yaml", "targetPort: api", "targetPort: https"}, "Service targetPort https is no container port"},
		{"intake service unready", edit{"k8s/intake.yaml", "    app.kubernetes.io/component: intake\n  ports:", "    app.kubernetes.io/component: intake\n  publishNotReadyAddresses: true\n  ports:"},
			"Service fulfil-intake sends purchases (targetPort api) to pods that are not ready"},
		{"service selects both", edit{"k8s/service.yaml", "    app.kubernetes.io/component: worker\n  publishNotReadyAddresses", "  publishNotReadyAddresses"}, "Service fulfil-worker selects the pods of 2 Deployments"},
		{"intake pdb", edit{"k8s/intake.yaml", "minAvailable: 1", "minAvailable: 2"}, "minAvailable 2 with 2 replicas blocks every eviction"},
		{"intake pdb selector", edit{"k8s/intake.yaml", "minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: fulfil\n      app.kubernetes.io/component: intake",
			"minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: fulfil\n      app.kubernetes.io/component: intakes"}, "PodDisruptionBudget selector map[app.kubernetes.io/component:intakes app.kubernetes.io/name:fulfil] of fulfil-intake"},
		{"intake deployment selector", edit{"k8s/intake.yaml", "      app.kubernetes.io/component: intake\n", "      app.kubernetes.io/component: intakes\n"}, "Deployment fulfil-intake: selector"},
		{"intake netpol missing", edit{"k8s/networkpolicy.yaml", "      app.kubernetes.io/component: intake\n  policyTypes", "      app.kubernetes.io/component: intakes\n  policyTypes"},
			"no NetworkPolicy selects the pods of Deployment fulfil-intake"},
		{"intake netpol port closed", edit{"k8s/networkpolicy.yaml", "    - ports:\n        - {port: 8081, protocol: TCP}\n", ""}, "no NetworkPolicy admits port api (8081) of the pods of Deployment fulfil-intake"},
		{"intake netpol every port", edit{"k8s/networkpolicy.yaml", "    - ports:\n        - {port: 8081, protocol: TCP}\n", "    - {}\n"}, "NetworkPolicy fulfil-intake admits every port"},
		{"intake netpol other port", edit{"k8s/networkpolicy.yaml", "{port: 8081, protocol: TCP}", "{port: 8443, protocol: TCP}"}, "admits port 8443, which the pods of Deployment fulfil-intake do not have"},
		{"intake shut out of NATS", edit{"k8s/networkpolicy.yaml", "values: [worker, intake]", "values: [worker]"}, "no NetworkPolicy lets the intake reach the NATS client port"},
		{"compose intake setting", edit{"compose.yaml", "FULFIL_API_KEYS_FILE: /run/secrets/api_keys", "FULFIL_API_KEYS_FILE: /run/secrets/api_keys\n      FULFIL_API_TLS_CERT: /run/secrets/api_keys"},
			"compose.yaml's fulfil api (service intake) sets FULFIL_API_TLS_CERT, the Kubernetes one does not"},
	}
	setNATSPasswords(t)
	clean := deployTree(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps.Clone(clean)
			if !strings.Contains(files[tt.give.file], tt.give.old) {
				t.Fatalf("%s does not contain %q", tt.give.file, tt.give.old)
			}
			files[tt.give.file] = strings.Replace(files[tt.give.file], tt.give.old, tt.give.new, 1)
			got := deployProblems(files)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems:\n%s\nwant one containing %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}

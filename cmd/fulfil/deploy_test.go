package main

import (
	"bytes"
	"context"
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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/nats-io/nats-server/v2/server"

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
// configurations refer to $POD_NAME, so it must be set.
func deployProblems(files map[string]string) []string {
	imageEnv, problems := checkDockerfile(files["Dockerfile"])
	problems = append(problems, checkCompose(files, imageEnv)...)
	problems = append(problems, checkK8s(files, imageEnv)...)
	for name, text := range files {
		if path.Ext(name) == ".conf" {
			problems = append(problems, checkNATSConf(name, text)...)
		}
	}
	return problems
}

// checkNATSConf reports a NATS server configuration without what fulfil needs: JetStream on a
// file store, a chosen sync_interval, a cluster, and room for the largest request.
func checkNATSConf(name, text string) []string {
	var o server.Options
	if err := o.ProcessConfigString(text); err != nil {
		return []string{name + ": " + strings.TrimSpace(err.Error())}
	}
	var problems []string
	for _, p := range []struct {
		bad  bool
		what string
	}{
		{!o.JetStream || o.StoreDir == "", "no jetstream block with a store_dir"},
		{o.SyncInterval == 0 && !o.SyncAlways, "no sync_interval: the durability choice is not written down"},
		{o.Cluster.Name == "", "no cluster block"},
		{o.MaxPayload != 0 && o.MaxPayload < messages.MaxRequestBytes, fmt.Sprintf("max_payload %d is below the largest request, %d", o.MaxPayload, messages.MaxRequestBytes)},
	} {
		if p.bad {
			problems = append(problems, name+": "+p.what)
		}
	}
	return problems
}

func isSetting(name string) bool {
	return slices.Contains(nonFulfilEnv, name) || slices.ContainsFunc(envBindings, func(b envVar) bool { return b.env == name })
}

// checkArgs reports a command line that does not start with a fulfil command or that uses a
// flag the command does not have.
func checkArgs(args []string) error {
	if len(args) == 0 {
		return errors.New("no command")
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{args[0], "-h"}, io.Discard, &stderr); code != exitOK {
		return fmt.Errorf("%q is not a fulfil command", args[0])
	}
	for _, a := range args[1:] {
		name, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue // a flag's value
		}
		name, _, _ = strings.Cut(strings.TrimPrefix(name, "-"), "=")
		if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(name) + `(\s|$)`).Match(stderr.Bytes()) {
			return fmt.Errorf("fulfil %s has no flag -%s", args[0], name)
		}
	}
	return nil
}

// checkHTTPAddr reports an FULFIL_HTTP_ADDR that is unreachable from outside the container or
// that is not on port.
func checkHTTPAddr(addr string, port int) error {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("FULFIL_HTTP_ADDR %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return fmt.Errorf("FULFIL_HTTP_ADDR %q does not listen on every interface", addr)
	}
	if p != strconv.Itoa(port) {
		return fmt.Errorf("FULFIL_HTTP_ADDR %q is not on the container port %d", addr, port)
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
	StopGracePeriod string            `yaml:"stop_grace_period"`
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
		}
		for _, v := range svc.Volumes {
			if src, _, _ := strings.Cut(v, ":"); strings.HasPrefix(src, ".") {
				if _, ok := files[path.Clean(src)]; !ok {
					bad(name, "mounts %s, which does not exist", src)
				}
			}
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
			_, target, _ := strings.Cut(p, ":")
			port, _ := strconv.Atoi(strings.TrimSuffix(target, "/tcp"))
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
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
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

type k8sDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int            `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
				Volumes                       []struct {
					Name   string `yaml:"name"`
					Secret struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Spec struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

// k8sObjects is what checkK8s reads from the manifests, by kind.
type k8sObjects struct {
	configMaps  map[string]map[string]string // name → data
	secrets     map[string][]string          // name → keys
	deployments []k8sDeployment
	services    []k8sService
	pdbs        []k8sPDB
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
			for k := range head.Data {
				o.secrets[head.Metadata.Name] = append(o.secrets[head.Metadata.Name], k)
			}
			for k := range head.StringData {
				o.secrets[head.Metadata.Name] = append(o.secrets[head.Metadata.Name], k)
			}
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
		}
		if err != nil {
			return err
		}
	}
}

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
	o := k8sObjects{configMaps: map[string]map[string]string{}, secrets: map[string][]string{}}
	var manifests []string
	for name, text := range files {
		base, ok := strings.CutPrefix(name, "k8s/")
		if !ok || path.Ext(base) != ".yaml" || base == "kustomization.yaml" {
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
	for _, d := range o.deployments {
		pod := d.Spec.Template
		if time.Duration(pod.Spec.TerminationGracePeriodSeconds)*time.Second <= workerDrain {
			bad("terminationGracePeriodSeconds %d does not leave the %v drain", pod.Spec.TerminationGracePeriodSeconds, workerDrain)
		}
		secretVolumes := map[string]string{} // mount path → Secret
		for _, c := range pod.Spec.Containers {
			for _, m := range c.VolumeMounts {
				for _, v := range pod.Spec.Volumes {
					if v.Name == m.Name && v.Secret.SecretName != "" {
						secretVolumes[m.MountPath] = v.Secret.SecretName
					}
				}
			}
			problems = append(problems, checkK8sContainer(c, o, imageEnv, secretVolumes)...)
		}
		for _, s := range o.services {
			if !subset(s.Spec.Selector, pod.Metadata.Labels) {
				bad("Service selector %v does not select the pods %v", s.Spec.Selector, pod.Metadata.Labels)
			}
			for _, p := range s.Spec.Ports {
				if slices.IndexFunc(pod.Spec.Containers, func(c k8sContainer) bool { return c.port(p.TargetPort) != 0 }) < 0 {
					bad("Service targetPort %s is no container port", p.TargetPort)
				}
			}
		}
		for _, p := range o.pdbs {
			if !subset(p.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
				bad("PodDisruptionBudget selector %v does not select the pods %v", p.Spec.Selector.MatchLabels, pod.Metadata.Labels)
			}
			if p.Spec.MinAvailable >= d.Spec.Replicas {
				bad("PodDisruptionBudget minAvailable %d with %d replicas blocks every eviction", p.Spec.MinAvailable, d.Spec.Replicas)
			}
		}
	}
	return problems
}

// checkK8sContainer reports what is wrong with one fulfil container; secretVolumes maps the pod's
// secret mount paths to their Secrets.
func checkK8sContainer(c k8sContainer, o k8sObjects, imageEnv map[string]string, secretVolumes map[string]string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, "k8s: container: "+fmt.Sprintf(format, args...))
	}
	if err := checkArgs(c.Args); err != nil {
		bad("args %v: %v", c.Args, err)
	}
	env := maps.Clone(imageEnv)
	for _, ef := range c.EnvFrom {
		cm, ok := o.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			bad("envFrom ConfigMap %q does not exist", ef.ConfigMapRef.Name)
		}
		maps.Copy(env, cm)
	}
	for _, e := range c.Env {
		if !isSetting(e.Name) {
			bad("env %s is not a fulfil setting", e.Name)
		}
		env[e.Name] = e.Value
		if !strings.HasSuffix(e.Name, "_FILE") {
			continue
		}
		secret, ok := secretVolumes[path.Dir(e.Value)]
		if !ok || !slices.Contains(o.secrets[secret], path.Base(e.Value)) {
			bad("%s=%s is not a key of a mounted Secret", e.Name, e.Value)
		}
	}
	httpPort := c.port("http")
	if err := checkHTTPAddr(env["FULFIL_HTTP_ADDR"], httpPort); err != nil {
		bad("%v", err)
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
	return problems
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
	t.Setenv("POD_NAME", "nats-0")
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

		{"compose env", edit{"compose.yaml", "FULFIL_CONCURRENCY:", "FULFIL_WORKERS:"}, "FULFIL_WORKERS is not a fulfil setting"},
		{"compose command", edit{"compose.yaml", `command: ["worker"]`, `command: ["serve"]`}, `"serve" is not a fulfil command`},
		{"compose flag", edit{"compose.yaml", `"--error-rate"`, `"--errors"`}, "fulfil partnersim has no flag -errors"},
		{"compose port", edit{"compose.yaml", `"8081:8080"`, `"8081:9090"`}, "is not on the container port 9090"},
		{"compose nats server left out", edit{"compose.yaml", ",nats://nats-3:4222", ""}, "want every NATS server"},
		{"compose partner port", edit{"compose.yaml", "http://partnersim:8089", "http://partnersim:8090"}, "but partnersim listens on"},
		{"compose insecure", edit{"compose.yaml", `FULFIL_PARTNER_INSECURE: "true"`, `FULFIL_PARTNER_INSECURE: "false"`}, "without FULFIL_PARTNER_INSECURE=true"},
		{"compose client id", edit{"compose.yaml", "FULFIL_PARTNER_CLIENT_ID: fulfil-sim", "FULFIL_PARTNER_CLIENT_ID: other"}, "not the ones partnersim accepts"},
		{"compose client secret", edit{"partner-client-secret.txt", "fulfil-sim-secret", "other"}, "not the ones partnersim accepts"},
		{"compose secret undeclared", edit{"compose.yaml", "secrets: [partner_client_secret]", "secrets: [partner_secret]"}, "secret partner_secret is not declared"},
		{"compose secret path", edit{"compose.yaml", "/run/secrets/partner_client_secret", "/run/secrets/other"}, "is not one of its secrets"},
		{"compose mount", edit{"compose.yaml", `"./nats/nats.conf:/etc/nats/nats.conf:ro", "nats-2`, `"./nats/server.conf:/etc/nats/nats.conf:ro", "nats-2`}, "mounts ./nats/server.conf, which does not exist"},
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
		{"nats sync interval", edit{"k8s/nats-server.conf", `sync_interval: "2m"`, ""}, "k8s/nats-server.conf: no sync_interval"},
		{"nats without jetstream", edit{"nats/nats.conf", "jetstream {", "jetstream {\n  enabled: false"}, "nats/nats.conf: no jetstream block"},
		{"nats without cluster", edit{"k8s/nats-server.conf", "cluster {\n  name: fulfil", "cluster {"}, "nats-server.conf: no cluster block"},
		{"nats typo", edit{"k8s/nats-server.conf", "max_file_store:", "max_filestore:"}, `unknown field "max_filestore"`},
		{"manifest does not parse", edit{"k8s/pdb.yaml", "minAvailable: 1", "minAvailable: [1"}, "pdb.yaml: yaml:"},
	}
	t.Setenv("POD_NAME", "nats-0")
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

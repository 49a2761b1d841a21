package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// manifest is what mptcpgod.yaml holds, decoded.
type manifest struct {
	namespace *corev1.Namespace
	account   *corev1.ServiceAccount
	config    *corev1.ConfigMap
	daemonSet *appsv1.DaemonSet
}

// decodeManifest decodes every document of mptcpgod.yaml strictly into
// the Kubernetes API types its apiVersion and kind name: an unknown or
// duplicate field, or a kind the API does not have, is an error.
func decodeManifest(t *testing.T) manifest {
	t.Helper()
	b, err := os.ReadFile("mptcpgod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(appsv1.AddToScheme(scheme), corev1.AddToScheme(scheme)); err != nil {
		t.Fatal(err)
	}
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	var m manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("document %d does not decode strictly: %v", i, err)
		}
		var dup bool
		switch o := obj.(type) {
		case *corev1.Namespace:
			dup, m.namespace = m.namespace != nil, o
		case *corev1.ServiceAccount:
			dup, m.account = m.account != nil, o
		case *corev1.ConfigMap:
			dup, m.config = m.config != nil, o
		case *appsv1.DaemonSet:
			dup, m.daemonSet = m.daemonSet != nil, o
		default:
			t.Fatalf("document %d: unexpected %v", i, gvk)
		}
		if dup {
			t.Fatalf("document %d: a second %v", i, gvk)
		}
	}
	if m.namespace == nil || m.account == nil || m.config == nil || m.daemonSet == nil {
		t.Fatalf("want a Namespace, a ServiceAccount, a ConfigMap and a DaemonSet, got %+v", m)
	}
	return m
}

// TestManifestDecodes: the manifest's documents are the four expected
// objects, in the manifest's namespace, the DaemonSet's selector matching
// its pods.
func TestManifestDecodes(t *testing.T) {
	t.Parallel()
	m := decodeManifest(t)
	ns := m.namespace.Name
	for _, meta := range []struct{ kind, namespace string }{
		{"ServiceAccount", m.account.Namespace}, {"ConfigMap", m.config.Namespace}, {"DaemonSet", m.daemonSet.Namespace},
	} {
		if meta.namespace != ns {
			t.Errorf("%s in namespace %q, want %q", meta.kind, meta.namespace, ns)
		}
	}
	ds := m.daemonSet
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, ds.Spec.Template.Labels)
		}
	}
	if len(ds.Spec.Selector.MatchLabels) == 0 {
		t.Error("the DaemonSet selects no label")
	}
	pod := ds.Spec.Template.Spec
	if pod.ServiceAccountName != m.account.Name {
		t.Errorf("pods run as service account %q, want %q", pod.ServiceAccountName, m.account.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pods get an API token, which the daemon never uses")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	if c := pod.Containers[0]; c.Image == "" || len(c.Args) == 0 {
		t.Errorf("container %q: image %q, args %q", c.Name, c.Image, c.Args)
	}
}

// unitCapabilities returns the capabilities of the systemd unit, without
// their CAP_ prefix, as Kubernetes names them: CapabilityBoundingSet= and
// AmbientCapabilities= must agree.
func unitCapabilities(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "mptcpgod.service"))
	if err != nil {
		t.Fatal(err)
	}
	sets := map[string][]string{}
	for line := range strings.Lines(string(b)) {
		key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || (key != "CapabilityBoundingSet" && key != "AmbientCapabilities") {
			continue
		}
		for _, c := range strings.Fields(value) {
			sets[key] = append(sets[key], strings.TrimPrefix(c, "CAP_"))
		}
	}
	bounding, ambient := sets["CapabilityBoundingSet"], sets["AmbientCapabilities"]
	slices.Sort(bounding)
	slices.Sort(ambient)
	if len(bounding) == 0 || !slices.Equal(bounding, ambient) {
		t.Fatalf("the unit's capabilities: bounding set %v, ambient %v: want the same, not empty", bounding, ambient)
	}
	return bounding
}

// TestManifestCapabilities: the daemon's container has the capabilities
// of the systemd unit and no other, no way to gain more, and the node's
// network namespace, which it manages, and nothing else of the node's.
func TestManifestCapabilities(t *testing.T) {
	t.Parallel()
	want := unitCapabilities(t)
	m := decodeManifest(t)
	pod := m.daemonSet.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("hostNetwork %v, dnsPolicy %q: want the node's network namespace, with cluster DNS", pod.HostNetwork, pod.DNSPolicy)
	}
	if pod.HostPID || pod.HostIPC {
		t.Errorf("hostPID %v, hostIPC %v: the daemon needs neither", pod.HostPID, pod.HostIPC)
	}
	if p := pod.SecurityContext; p == nil || p.SeccompProfile == nil || p.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v: want the runtime's default seccomp profile", p)
	}
	sc := pod.Containers[0].SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("the container sets no capabilities")
	}
	var add []string
	for _, c := range sc.Capabilities.Add {
		add = append(add, string(c))
	}
	slices.Sort(add)
	if diff := cmp.Diff(want, add); diff != "" {
		t.Errorf("capabilities added (-unit +container):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.Capability{"ALL"}, sc.Capabilities.Drop); diff != "" {
		t.Errorf("capabilities dropped (-want +got):\n%s", diff)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the container is privileged")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container allows privilege escalation (the unit has NoNewPrivileges=yes)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the container's root file system is writable (the unit has ProtectSystem=strict)")
	}
}

// daemonConfig is what the test reads of the ConfigMap's configuration.
type daemonConfig struct {
	Control struct{ Socket string }
	Metrics struct{ Listen string }
	Usage   struct {
		StateDir string `toml:"state_dir"`
	}
}

// TestManifestConfiguration: the daemon reads its configuration from the
// ConfigMap, which the daemon itself accepts; it serves its metrics on the
// container port and where the scrape annotations say; every directory it
// writes is a volume, the root file system being read-only.
func TestManifestConfiguration(t *testing.T) {
	t.Parallel()
	m := decodeManifest(t)
	pod := m.daemonSet.Spec.Template.Spec
	c := pod.Containers[0]

	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args %q: want --config FILE", c.Args)
	}
	configPath := c.Args[i+1]
	text, ok := m.config.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s (keys %v)", m.config.Name, path.Base(configPath), slices.Sorted(maps.Keys(m.config.Data)))
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.MountPath] = vm
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	vm, ok := mounts[path.Dir(configPath)]
	if !ok {
		t.Fatalf("nothing is mounted at %s, where --config points", path.Dir(configPath))
	}
	if v := volumes[vm.Name]; v.ConfigMap == nil || v.ConfigMap.Name != m.config.Name || vm.SubPath != "" {
		t.Errorf("%s is volume %+v, want the whole ConfigMap %s (a subPath mount never sees its changes)", vm.MountPath, v, m.config.Name)
	}
	checkConfig(t, text)

	var cfg daemonConfig
	if err := toml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: %v", m.config.Name, err)
	}
	_, port, err := net.SplitHostPort(cfg.Metrics.Listen)
	if err != nil {
		t.Fatalf("metrics.listen %q: %v: the metrics must be served over TCP for Prometheus", cfg.Metrics.Listen, err)
	}
	var containerPort string
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			containerPort = strconv.Itoa(int(p.ContainerPort))
		}
	}
	ann := m.daemonSet.Spec.Template.Annotations
	if containerPort != port || ann["prometheus.io/port"] != port || ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("metrics.listen port %s, container port \"metrics\" %q, annotations %v: want the same port, scraped at /metrics",
			port, containerPort, ann)
	}

	for what, dir := range map[string]string{"control.socket": path.Dir(cfg.Control.Socket), "usage.state_dir": cfg.Usage.StateDir} {
		vm, ok := mounts[dir]
		if !ok || vm.ReadOnly {
			t.Errorf("%s %s is not a writable volume: the daemon writes there", what, dir)
		}
	}
	if v := volumes[mounts[cfg.Usage.StateDir].Name]; v.HostPath == nil {
		t.Errorf("usage.state_dir is volume %+v: want a directory of the node, so that the usage survives the pod", v)
	}
}

// checkConfig runs `mptcpgod --check-config` on the configuration: the
// daemon's own parser and policy builder accept it.
func checkConfig(t *testing.T, text string) {
	t.Helper()
	tmp := t.TempDir()
	file := filepath.Join(tmp, "mptcpgod.toml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(tmp, "mptcpgod")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mptcpgod")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--check-config", "--config", file).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "config ok" {
		t.Errorf("mptcpgod --check-config on the ConfigMap's configuration: %v\n%s", err, out)
	}
}

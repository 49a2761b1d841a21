// Package kubernetes holds mptcpgod's fleet install: mptcpgod.yaml, a
// DaemonSet that runs the daemon on every node in the node's network
// namespace, with its ConfigMap, and Containerfile, its image.
// docs/fleet.md explains both.
//
// It is a Go module of its own, so that the Kubernetes API types its test
// decodes the manifest into stay out of mptcpgod's dependencies. The test
// decodes every document strictly (unknown and duplicate fields are
// errors), checks that the pod has exactly the capabilities of the systemd
// unit (dist/mptcpgod.service), runs in the node's network namespace,
// reads its configuration from the ConfigMap and serves the metrics on the
// port its scrape annotations name, and has the daemon itself check the
// ConfigMap's configuration. `make test` runs it.
package kubernetes

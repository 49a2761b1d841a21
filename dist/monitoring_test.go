package dist

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// The monitoring files: the Grafana dashboard, the alert rules and their
// unit tests, relative to the source tree.
const (
	dashboardFile = "dist/grafana/mptcpgod.json"
	rulesFile     = "dist/prometheus/mptcpgod-rules.yml"
	rulesTestFile = "dist/prometheus/mptcpgod-rules.test.yml"
)

// TestPrometheusRules: promtool accepts the alert rules, and their unit
// tests (when each alert fires, with which labels and text) pass.
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	promtool := needTool(t, "promtool")
	root := repoRoot(t)
	mustRun(t, root, nil, promtool, "check", "rules", rulesFile)
	mustRun(t, filepath.Dir(filepath.Join(root, rulesTestFile)), nil, promtool, "test", "rules", filepath.Base(rulesTestFile))
}

// loadDashboard decodes the dashboard strictly into Grafana's own schema
// types (every field known, every required one there, the panels' options
// those of their plugin), validates it and returns it. The strict decoder
// of this SDK version checks the panels but leaves them out of its result
// (PanelOrRowPanel returns its empty error list as an error), so the
// dashboard returned is decoded again, plainly.
//
// The SDK calls this JSON model (dashboard.Dashboard) deprecated for
// Grafana 12's resource schema (dashboardv2); the model is the one every
// Grafana from 10.4 on imports, which docs/fleet.md promises.
//
//lint:ignore SA1019 the classic JSON model is the one Grafana 10 and 11 import
func loadDashboard(t *testing.T) *dashboard.Dashboard {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	plugins.RegisterDefaultPlugins()
	var strict dashboard.Dashboard //lint:ignore SA1019 see above
	if err := noBuildErrors(strict.UnmarshalJSONStrict(b)); err != nil {
		t.Fatalf("%s does not decode strictly as a Grafana dashboard:\n%v", dashboardFile, err)
	}
	var d dashboard.Dashboard //lint:ignore SA1019 see above
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if err := noBuildErrors(d.Validate()); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// noBuildErrors returns err unless it is an empty cog.BuildErrors, which
// the SDK returns for success.
func noBuildErrors(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// TestGrafanaDashboard: the dashboard is one Grafana imports as it is: a
// fixed uid, a data-source variable every query uses, panels with unique
// ids on the 24-column grid without overlapping, each with a title and a
// query.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.Uid == nil || *d.Uid != "mptcpgod" || d.Title == nil || *d.Title != "mptcpgod" {
		t.Errorf("uid %v, title %v: want both mptcpgod (docs/fleet.md links to /d/mptcpgod)", d.Uid, d.Title)
	}
	vars := map[string]dashboard.VariableModel{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != dashboard.VariableTypeDatasource {
		t.Errorf("no data-source variable \"datasource\": %v", vars)
	}
	if v, ok := vars["instance"]; !ok || v.Datasource == nil || v.Datasource.Uid == nil || *v.Datasource.Uid != "${datasource}" {
		t.Errorf("no variable \"instance\" on ${datasource}: %+v", v)
	}

	type cell struct{ x, y uint32 }
	taken := map[cell]string{}
	ids := map[uint32]string{}
	place := func(id uint32, title string, g *dashboard.GridPos) {
		if prev, dup := ids[id]; dup {
			t.Errorf("panels %q and %q share id %d", prev, title, id)
		}
		ids[id] = title
		if g == nil || g.W == 0 || g.H == 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: grid position %+v is not on the 24-column grid", title, g)
			return
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Errorf("panels %q and %q overlap at %d,%d", other, title, x, y)
					return
				}
				taken[cell{x, y}] = title
			}
		}
	}
	queries := 0
	for _, p := range d.Panels {
		if r := p.RowPanel; r != nil {
			place(r.Id, "row "+deref(r.Title), r.GridPos)
			if len(r.Panels) > 0 {
				t.Errorf("row %q holds its panels (collapsed): keep them on the dashboard", deref(r.Title))
			}
			continue
		}
		panel := p.Panel
		title := deref(panel.Title)
		if panel.Id == nil || title == "" || deref(panel.Description) == "" {
			t.Errorf("panel %+v: want an id, a title and a description", panel)
			continue
		}
		place(*panel.Id, title, panel.GridPos)
		if panel.Datasource == nil || deref(panel.Datasource.Uid) != "${datasource}" {
			t.Errorf("panel %q does not use the ${datasource} variable: %+v", title, panel.Datasource)
		}
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", title)
		}
		for _, q := range panel.Targets {
			pq, ok := q.(*prometheus.Dataquery)
			if !ok || pq.Expr == "" {
				t.Errorf("panel %q: query %T %+v is not a Prometheus query", title, q, q)
				continue
			}
			queries++
		}
	}
	if queries == 0 {
		t.Error("the dashboard has no query")
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// grafanaVars stands for the variables Grafana fills in a query.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "6h")

// monitoringExprs returns the PromQL of the dashboard (panel queries and
// the metric of each label_values variable) and of the rules, by where
// each comes from.
func monitoringExprs(t *testing.T) map[string]string {
	t.Helper()
	exprs := map[string]string{}
	d := loadDashboard(t)
	for _, v := range d.Templating.List {
		if v.Query == nil || v.Query.Map == nil {
			continue
		}
		q, _ := v.Query.Map["query"].(string)
		inner, ok := strings.CutPrefix(q, "label_values(")
		if !ok {
			t.Fatalf("variable %s: query %q is not label_values(metric, label)", v.Name, q)
		}
		metric, _, _ := strings.Cut(inner, ",")
		exprs["variable "+v.Name] = metric
	}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for i, q := range p.Panel.Targets {
			if pq, ok := q.(*prometheus.Dataquery); ok {
				exprs[fmt.Sprintf("panel %q query %d", deref(p.Panel.Title), i)] = grafanaVars.Replace(pq.Expr)
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	// promtool checks the rest of the file (TestPrometheusRules).
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Record, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs["rule "+r.Alert+r.Record] = r.Expr
		}
	}
	return exprs
}

// A use is a series selector of a query and what its place there asks of
// the metric's type.
type use struct {
	from     string // the query's origin
	sel      *parser.VectorSelector
	name     string
	needType string // "counter", "gauge" or "" (any)
}

// rangeFuncs are the functions of a range of samples whose argument must
// be of a type.
var rangeFuncs = map[string]string{
	"rate": "counter", "irate": "counter", "increase": "counter", "resets": "counter",
	"delta": "gauge", "idelta": "gauge", "deriv": "gauge", "predict_linear": "gauge",
}

// syntheticMetrics are series Prometheus makes itself, not the daemon.
var syntheticMetrics = map[string]bool{"up": true}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = map[string]bool{"instance": true, "job": true}

// A grouping is an aggregation's by() labels, which must be labels of
// the series it aggregates.
type grouping struct {
	where   string // the query's origin and the aggregation
	by      []string
	metrics []string // of the series aggregated
}

// selectorUses parses the queries and returns every series selector in
// them and every aggregation by labels.
func selectorUses(t *testing.T, exprs map[string]string) (uses []use, groupings []grouping) {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	for from, q := range exprs {
		expr, err := p.ParseExpr(q)
		if err != nil {
			t.Errorf("%s: %q: %v", from, q, err)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
			switch n := n.(type) {
			case *parser.VectorSelector:
				u := use{from: from, sel: n, name: n.Name}
				for i := len(path) - 1; i >= 0; i-- {
					if c, ok := path[i].(*parser.Call); ok {
						u.needType = rangeFuncs[c.Func.Name]
						break
					}
				}
				uses = append(uses, u)
			case *parser.AggregateExpr:
				if n.Without || len(n.Grouping) == 0 {
					break
				}
				g := grouping{where: fmt.Sprintf("%s: %s", from, n), by: n.Grouping}
				parser.Inspect(n.Expr, func(n parser.Node, _ []parser.Node) error {
					if vs, ok := n.(*parser.VectorSelector); ok {
						g.metrics = append(g.metrics, vs.Name)
					}
					return nil
				})
				groupings = append(groupings, g)
			}
			return nil
		})
	}
	return uses, groupings
}

// TestMonitoringMetrics runs the real daemon, in each mode, in a namespace
// as a host with a metered cellular link and an exec policy, takes its
// primary link down (daemonMetrics), and checks that every series the
// dashboard and the alert rules select is in its /metrics: the metric
// with the type the query needs (a counter under rate(), a histogram's
// buckets), every label matched, with the values matched, and every label
// aggregated by.
func TestMonitoringMetrics(t *testing.T) {
	t.Parallel()
	needRoot(t)
	exprs := monitoringExprs(t)
	uses, groupings := selectorUses(t, exprs)
	// The modes' metrics differ (endpoints in kernel mode, connections
	// and subflows created in userspace mode): a query may use either's.
	var kernel, userspace map[string]*dto.MetricFamily
	t.Run("daemons", func(t *testing.T) {
		t.Run("kernel", func(t *testing.T) {
			t.Parallel()
			kernel = daemonMetrics(t, "kernel")
		})
		t.Run("userspace", func(t *testing.T) {
			t.Parallel()
			userspace = daemonMetrics(t, "userspace")
		})
	})
	if t.Failed() {
		t.FailNow()
	}
	fams := mergeFamilies(t, kernel, userspace)

	// Labels of each family; a histogram's _bucket series have le.
	labelValues := map[string]map[string][]string{}
	for name, f := range fams {
		lv := map[string][]string{}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(lv[lp.GetName()], lp.GetValue()) {
					lv[lp.GetName()] = append(lv[lp.GetName()], lp.GetValue())
				}
			}
		}
		labelValues[name] = lv
		if f.GetType() == dto.MetricType_HISTOGRAM {
			bucket := map[string][]string{"le": {"+Inf"}}
			for k, v := range lv {
				bucket[k] = v
			}
			labelValues[name+"_bucket"] = bucket
			labelValues[name+"_sum"], labelValues[name+"_count"] = lv, lv
		}
	}
	metricType := func(name string) (string, bool) {
		if f, ok := fams[name]; ok {
			return strings.ToLower(f.GetType().String()), true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fams[base].GetType() == dto.MetricType_HISTOGRAM {
				return "histogram" + suffix, true
			}
		}
		return "", false
	}

	checked := map[string]bool{}
	for _, u := range uses {
		if syntheticMetrics[u.name] {
			continue
		}
		if u.name == "" {
			t.Errorf("%s: %s selects no metric by name", u.from, u.sel)
			continue
		}
		typ, ok := metricType(u.name)
		if !ok {
			t.Errorf("%s: %s is not in the daemon's /metrics", u.from, u.name)
			continue
		}
		checked[u.name] = true
		switch {
		case u.needType == "counter" && typ != "counter" && typ != "histogram_bucket" && typ != "histogram_count" && typ != "histogram_sum":
			t.Errorf("%s: %s is a %s, but the query takes its rate as a counter's", u.from, u.name, typ)
		case u.needType == "gauge" && typ != "gauge":
			t.Errorf("%s: %s is a %s, but the query takes its delta as a gauge's", u.from, u.name, typ)
		case typ == "histogram":
			t.Errorf("%s: %s is a histogram: select its _bucket, _sum or _count", u.from, u.name)
		}
		lv := labelValues[u.name]
		for _, m := range u.sel.LabelMatchers {
			if m.Name == model.MetricNameLabel || targetLabels[m.Name] {
				continue
			}
			values, ok := lv[m.Name]
			if !ok {
				t.Errorf("%s: %s has no label %s (it has %v)", u.from, u.name, m.Name, slices.Sorted(maps.Keys(lv)))
				continue
			}
			for _, want := range matchedValues(m) {
				if !slices.Contains(values, want) {
					t.Errorf("%s: %s{%s=%q} is not in the daemon's /metrics (values %v)", u.from, u.name, m.Name, want, values)
				}
			}
		}
	}
	for _, g := range groupings {
		for _, l := range g.by {
			if targetLabels[l] {
				continue
			}
			if !slices.ContainsFunc(g.metrics, func(name string) bool {
				_, has := labelValues[name][l]
				return has
			}) {
				t.Errorf("%s: aggregates by %q, which none of %v has", g.where, l, g.metrics)
			}
		}
	}
	t.Logf("%d queries use %d metrics of the daemon", len(exprs), len(checked))
}

// matchedValues returns the label values a matcher asks for: its value
// for =, each alternative of a regular expression that is a list of
// names (a|b|c) for =~; nothing for other patterns and negative matchers.
func matchedValues(m *labels.Matcher) []string {
	switch m.Type {
	case labels.MatchEqual:
		return []string{m.Value}
	case labels.MatchRegexp:
		alts := strings.Split(m.Value, "|")
		for _, a := range alts {
			if a == "" || regexp.QuoteMeta(a) != a {
				return nil // a pattern, not a list of names
			}
		}
		return alts
	}
	return nil
}

// mergeFamilies returns the metric families of a and b together; a
// family in both must have one type.
func mergeFamilies(t *testing.T, a, b map[string]*dto.MetricFamily) map[string]*dto.MetricFamily {
	t.Helper()
	out := map[string]*dto.MetricFamily{}
	for name, f := range a {
		out[name] = &dto.MetricFamily{Name: f.Name, Type: f.Type, Metric: slices.Clone(f.Metric)}
	}
	for name, f := range b {
		o, ok := out[name]
		if !ok {
			out[name] = f
			continue
		}
		if o.GetType() != f.GetType() {
			t.Errorf("%s is a %v in one mode and a %v in the other", name, o.GetType(), f.GetType())
		}
		o.Metric = append(o.Metric, f.Metric...)
	}
	return out
}

// daemonMetrics runs mptcpgod in the client namespace of a two-link
// testbed, in mode with fullmesh | backup-cellular | exec (the example
// prefer_wired.py) and eth1 metered, a cellular link with a quota. In
// userspace mode it makes a connection that gets its eth1 subflow, as
// backup; in kernel mode it waits for the endpoints, eth1's backup. Then
// it takes eth0 down, so that eth1 is promoted, and returns the metrics
// the daemon serves once it has counted that.
func daemonMetrics(t *testing.T, mode string) map[string]*dto.MetricFamily {
	t.Helper()
	python := needTool(t, "python3")
	root := repoRoot(t)
	tmp := t.TempDir()

	tb := netnstest.NewTestbed(t, 2)
	l0 := tb.Links[0]
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	sock := filepath.Join(tmp, "mptcpgod.sock")
	conf := filepath.Join(tmp, "mptcpgod.toml")
	err := os.WriteFile(conf, fmt.Appendf(nil, `mode = %q
set_path_manager = true

[control]
socket = %q
group = ""

[links]
include_kinds = ["virtual", "cellular"]
cellular_names = ["eth1"]

[usage]
state_dir = %q

[[usage.links]]
name = "eth1"
quota = "1GB"

[[policy.chain]]
name = "fullmesh"

[[policy.chain]]
name = "backup-cellular"

[[policy.chain]]
name = "exec"
[policy.chain.config]
command = [%q, %q]
`, mode, sock, tmp, python, filepath.Join(root, "docs", "examples", "prefer_wired.py")), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d := daemontest.StartWith(t, tb.Client, daemontest.Options{ConfigFile: conf})

	ctl := &ctlapi.Client{Socket: sock}
	var fams map[string]*dto.MetricFamily
	waitMetrics := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			select {
			case <-d.Done():
				t.Fatalf("mptcpgod exited (%v) waiting for %s", d.Err(), what)
			default:
			}
			if b, err := ctl.Metrics(context.Background()); err == nil {
				p := expfmt.NewTextParser(model.UTF8Validation)
				fams, err = p.TextToMetricFamilies(bytes.NewReader(b))
				if err != nil {
					t.Fatalf("the daemon's /metrics do not parse: %v", err)
				}
				if cond() {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: timed out; metrics:\n%v", what, fams)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	value := func(name string, lv ...string) float64 {
		for _, m := range fams[name].GetMetric() {
			if hasLabels(m, lv...) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return -1
	}
	waitMetrics("the engine ready and the exec program up", func() bool {
		return value("mptcpgod_engine_ready") == 1 && value("mptcpgod_plugin_up") == 1
	})

	scope := "endpoint"
	if mode == "userspace" {
		scope = "subflow"
		ln := tb.Server.Listen("tcp", netip.AddrPortFrom(l0.Server4, 0).String())
		t.Cleanup(func() { _ = ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { _ = c.Close() })
			}
		}()
		c, err := tb.Client.Dial("tcp", "", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		waitMetrics("the eth1 subflow created", func() bool {
			return value("mptcpgod_engine_actions_total", "op", "create_subflow") >= 1 &&
				value("mptcpgod_kernel_subflows", "link", "eth1") == 1
		})
	} else {
		waitMetrics("the endpoints of eth0 and eth1", func() bool {
			return value("mptcpgod_engine_endpoints", "state", "ok") >= 2
		})
	}

	tb.Client.SetLinkUp(l0.ClientIf, false)
	waitMetrics("eth0 down, eth1 promoted", func() bool {
		return value("mptcpgod_link_up", "link", "eth0") == 0 &&
			value("mptcpgod_link_changes_total", "link", "eth0", "change", "down") == 1 &&
			value("mptcpgod_link_changes_total", "link", "eth0", "change", "address_unusable") >= 1 &&
			value("mptcpgod_engine_failovers_total", "scope", scope) >= 1
	})
	return fams
}

// hasLabels reports whether m has the labels lv (name, value pairs).
func hasLabels(m *dto.Metric, lv ...string) bool {
	for i := 0; i+1 < len(lv); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
			return lp.GetName() == lv[i] && lp.GetValue() == lv[i+1]
		}) {
			return false
		}
	}
	return true
}

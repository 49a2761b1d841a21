package policy

// Policy computes desired path-manager state from a View. It is pure: it
// does no I/O, never calls time.Now (View.Now is the time), and returns the
// same result for the same arguments, so the engine can call it whenever
// anything changes and diff the result against the kernel.
//
// Policies chain like middleware: each receives what the policies before it
// proposed (next) and returns its own version. A base policy (fullmesh) adds
// to next; a modifier filters and annotates it. next belongs to the callee,
// which may change it in place and return it; the View is shared and must
// not be changed.
type Policy interface {
	// Name is the name the policy was registered under.
	Name() string
	// Kernel returns the wanted in-kernel path-manager configuration
	// (v.Mode is ModeKernel).
	Kernel(v View, next KernelPlan) KernelPlan
	// Conn returns the wanted state of the userspace-PM connection c
	// (v.Mode is ModeUserspace).
	Conn(v View, c Conn, next ConnPlan) ConnPlan
}

// Validator is implemented by policies that check their configuration after
// their Factory built them; New calls it and fails when it returns an error.
type Validator interface {
	Validate() error
}

// Closer is implemented by policies that hold resources (the exec plugin's
// child process); Chain.Close and Router.Close call it.
type Closer interface {
	Close() error
}

// HealthReader is implemented by policies that decide from path health
// (Link.Health, Subflow.Health). Health is sampled from the kernel every
// few tens of milliseconds while subflows exist, so the daemon samples it
// only when a policy it runs reads it.
type HealthReader interface {
	// ReadsHealth reports whether the policy reads path health.
	ReadsHealth() bool
}

// OwnerReader is implemented by policies that decide from a connection's
// owner (Conn.Owner). Learning it costs a sock_diag lookup per
// connection, so the engine does it only when the policy it runs reads
// it; otherwise Conn.Owner is nil.
type OwnerReader interface {
	// ReadsOwner reports whether the policy reads Conn.Owner.
	ReadsOwner() bool
}

// Describer is implemented by policies that document their options, for
// `mptcpctl policies`.
type Describer interface {
	// Describe returns the policy's documentation. Option defaults are
	// the values of an empty configuration, whatever p was built from.
	Describe() Doc
}

// Doc documents a policy.
type Doc struct {
	// Name is the registered name; Describe (the function) fills it in.
	Name string `json:"name"`
	// Summary is one sentence on what the policy does.
	Summary string `json:"summary"`
	// Options are the policy's configuration options.
	Options []Option `json:"options"`
}

// Option documents one configuration option.
type Option struct {
	// Name is the option's key; nested keys are dotted ("limits.subflows").
	Name string `json:"name"`
	// Type is the JSON type: "string", "integer", "boolean", "number",
	// "array" or "object".
	Type string `json:"type"`
	// Default is the value of an empty configuration; nil when the option
	// has none.
	Default any `json:"default"`
	// Values lists the accepted values of an enumerated option.
	Values []string `json:"values,omitempty"`
	// Mode is the path manager the option acts in, when it acts in only
	// one (ModeKernel, ModeUserspace); empty when it acts in both.
	Mode Mode `json:"mode,omitempty"`
	// Help says what the option does.
	Help string `json:"help"`
}

// Package costaware is the "cost-aware" policy: metered links carry
// traffic only when no link that costs nothing can, and a link that used
// its quota for the period is taken out of use. It is a modifier: it runs
// after a base policy (fullmesh) in a chain and filters and annotates what
// that proposed.
//
// The policy is pure. What it knows of a link comes from the view
// (policy.Link): Metered, CostPerGB, QuotaBytes, and UsedBytes since
// UsageSince, which the daemon fills in from its [usage] configuration and
// the interface counters (package internal/usage). The policy's options
// say only what to do:
//
//	standby           "withdraw"  what a metered link below its quota does while a link
//	                              that costs nothing can carry the traffic: "withdraw"
//	                              (no endpoint, no paths) or "backup" (kept as backup)
//	at_quota          "withdraw"  what a link that used its quota does (any link with a
//	                              quota, metered or not): "withdraw" or "backup"
//	aggregate_budget  ""          metered links also carry traffic beside free ones until
//	                              they used this much in the period ("500MB", "1GiB")
//	aggregate_cost    0           the same budget as a cost: cost_per_gb × traffic, for
//	                              links with a price; the first budget spent ends it
//	links             []          overrides by interface-name glob, the first match
//	                              winning: {"name": "wwan*", "standby": "backup",
//	                              "at_quota": ..., "aggregate_budget": ..., "aggregate_cost": ...}
//
// A link costs nothing when it is not metered, usable, not stalled
// (Health.Stalled) and below its quota. Such a link is an alternative only
// for traffic of its own address family.
//
// # Kernel mode
//
// An endpoint on a link at its quota gets the at_quota action. An
// endpoint on a metered link gets the standby action while another
// endpoint of the plan, of the same family, sits on a link that costs
// nothing, unless the metered link is within its aggregation budget.
// Withdraw removes the endpoint (the kernel closes the subflows from its
// address); backup sets its backup flag.
//
// # Userspace mode
//
// The same per path of each connection: the alternative is another path
// of the connection, or an address announced to its peer, over a link
// that costs nothing. Withdraw drops the path, and the engine closes its
// subflow, but makes a client's initial subflow backup instead (package
// pm: the kernel can lose a connection whose initial subflow is closed);
// at the quota the address is withdrawn outright (ConnPlan.Withdraw) and
// even that one is closed. The engine never closes the subflows the peer
// opened (every subflow of a server-side connection), so there withdraw
// makes the paths backup instead. Announces of addresses on withdrawn links are
// dropped.
package costaware

// Package all links every built-in policy into a program: importing it for
// its side effects registers them with package policy.
//
//	import _ "github.com/mptcpgod/mptcpgod/plugins/all"
package all

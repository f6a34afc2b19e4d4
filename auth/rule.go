package auth

// Rule allows or denies actions on the topics that match its filter, for the
// identities it names. Rules are evaluated in order; the first whose filter
// matches and whose subjects include the identity decides.
type Rule struct {
	// Allow says whether the rule allows (true) or denies (false).
	Allow bool
	// Actions is the set of actions the rule covers (Publish | Subscribe |
	// Receive).
	Actions Action
	// Filter is an MQTT topic filter, as the client sees topics (inside its
	// tenant's namespace). It may contain %u (the user name), %c (the client
	// identifier) and %t (the tenant), substituted per client; a rule whose
	// substitution is empty (an anonymous client's %u) matches nothing.
	Filter string
	// Subjects the rule applies to. A rule with none applies to everyone;
	// otherwise to identities whose user is in Users, or who belong to one
	// of Groups, or to one of Tenants, or (Anonymous) that are anonymous.
	Users, Groups, Tenants []string
	Anonymous              bool
}

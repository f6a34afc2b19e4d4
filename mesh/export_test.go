package mesh

import "time"

// SetBackoff sets the bounds of n's reconnect back-off, so that a test sees
// it grow and start again within seconds; call it before Start.
func SetBackoff(n *Node, lo, hi time.Duration) { n.backoff = backoff{min: lo, max: hi} }

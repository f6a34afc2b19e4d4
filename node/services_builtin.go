package node

// The kinds of service built into citymesh register themselves
// (service.Register) in the init functions of their packages; this file
// imports them for that, so that every program that runs a node — citymesh
// serve, citymesh run KIND, citymesh demo — knows them. Add the import of a
// new kind's package here. A kind that is registered by another package (a
// program that embeds a node, a test) needs no line here.
import (
	_ "github.com/citymesh/citymesh/energy/live"
	_ "github.com/citymesh/citymesh/robot/live"
	_ "github.com/citymesh/citymesh/vineyard/live"
)

// Command coredns is github.com/coredns/coredns's coredns.go: every plugin
// of the release, then its main.
package main

import (
	_ "github.com/coredns/coredns/core/plugin"
	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }

// Command etcd is go.etcd.io/etcd's etcd binary (its main.go, verbatim in effect).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }

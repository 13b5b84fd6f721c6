// Command daprd is the Dapr sidecar (github.com/dapr/dapr v1.18.3) with exactly
// the components this template uses registered below.
//
// Upstream selects components with the `stablecomponents`/`allcomponents`
// build tags. Those pull in every cloud SDK (a long build on two cores), and
// some of their pinned modules (a pulsar fork) are not served by the module
// proxy reachable here. So we build without tags from a copy of upstream's
// cmd/daprd/app made by scripts/setup (zz_upstream_app.go, without its
// component registrations), and register our own set here.
package main

import (
	"os"
	"strings"

	"github.com/dapr/components-contrib/bindings/cron"
	bindingshttp "github.com/dapr/components-contrib/bindings/http"
	"github.com/dapr/components-contrib/bindings/localstorage"
	bindingsredis "github.com/dapr/components-contrib/bindings/redis"
	configredis "github.com/dapr/components-contrib/configuration/redis"
	conversationecho "github.com/dapr/components-contrib/conversation/echo"
	cryptolocalstorage "github.com/dapr/components-contrib/crypto/localstorage"
	lockredis "github.com/dapr/components-contrib/lock/redis"
	nrkubernetes "github.com/dapr/components-contrib/nameresolution/kubernetes"
	"github.com/dapr/components-contrib/nameresolution/sqlite"
	pubsubmem "github.com/dapr/components-contrib/pubsub/in-memory"
	pubsubredis "github.com/dapr/components-contrib/pubsub/redis"
	secretkubernetes "github.com/dapr/components-contrib/secretstores/kubernetes"
	"github.com/dapr/components-contrib/secretstores/local/env"
	"github.com/dapr/components-contrib/secretstores/local/file"
	statemem "github.com/dapr/components-contrib/state/in-memory"
	stateredis "github.com/dapr/components-contrib/state/redis"
	statesqlite "github.com/dapr/components-contrib/state/sqlite"

	bindingsLoader "github.com/dapr/dapr/pkg/components/bindings"
	configurationLoader "github.com/dapr/dapr/pkg/components/configuration"
	conversationLoader "github.com/dapr/dapr/pkg/components/conversation"
	cryptoLoader "github.com/dapr/dapr/pkg/components/crypto"
	lockLoader "github.com/dapr/dapr/pkg/components/lock"
	nrLoader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubLoader "github.com/dapr/dapr/pkg/components/pubsub"
	secretstoresLoader "github.com/dapr/dapr/pkg/components/secretstores"
	stateLoader "github.com/dapr/dapr/pkg/components/state"
)

func init() {
	// Same names as upstream's cmd/daprd/components registrations.
	stateLoader.DefaultRegistry.RegisterComponent(statesqlite.NewSQLiteStateStore, "sqlite", "sqlite3")
	stateLoader.DefaultRegistry.RegisterComponent(statemem.NewInMemoryStateStore, "in-memory")
	stateLoader.DefaultRegistry.RegisterComponent(stateredis.NewRedisStateStore, "redis")
	secretstoresLoader.DefaultRegistry.RegisterComponent(file.NewLocalSecretStore, "local.file")
	secretstoresLoader.DefaultRegistry.RegisterComponent(env.NewEnvSecretStore, "local.env")
	// On Kubernetes (deploy/): Secrets, and app ids resolved through Services.
	secretstoresLoader.DefaultRegistry.RegisterComponent(secretkubernetes.NewKubernetesSecretStore, "kubernetes")
	pubsubLoader.DefaultRegistry.RegisterComponent(pubsubmem.New, "in-memory")
	pubsubLoader.DefaultRegistry.RegisterComponent(pubsubredis.NewRedisStreams, "redis")
	bindingsLoader.DefaultRegistry.RegisterOutputBinding(localstorage.NewLocalStorage, "localstorage")
	bindingsLoader.DefaultRegistry.RegisterOutputBinding(bindingshttp.NewHTTP, "http")
	bindingsLoader.DefaultRegistry.RegisterOutputBinding(bindingsredis.NewRedis, "redis")
	bindingsLoader.DefaultRegistry.RegisterInputBinding(cron.NewCron, "cron")
	configurationLoader.DefaultRegistry.RegisterComponent(configredis.NewRedisConfigurationStore, "redis")
	lockLoader.DefaultRegistry.RegisterComponent(lockredis.NewStandaloneRedisLock, "redis")
	// Keys in a local folder: the SDK's crypto tests.
	cryptoLoader.DefaultRegistry.RegisterComponent(cryptolocalstorage.NewLocalStorageCrypto, "dapr.localstorage")
	// Echoes the prompt back: the SDK's conversation tests, with no model.
	// (daprd's conversation API already links the LLM client library.)
	conversationLoader.DefaultRegistry.RegisterComponent(conversationecho.NewEcho, "echo")
	// mDNS does not work on a loopback-only host; sqlite resolves app ids
	// from a file shared by all sidecars.
	nrLoader.DefaultRegistry.RegisterComponent(sqlite.NewResolver, "sqlite")
	nrLoader.DefaultRegistry.RegisterComponent(nrkubernetes.NewResolver, "kubernetes")
}

func main() {
	os.Args = withoutPlacement(os.Args)
	Run()
}

// withoutPlacement drops --placement-host-address. The dapr CLI we can build
// here (1.12) always passes it (default localhost:50005), and daprd then
// reports unhealthy until a placement service answers. The services use no
// actors; the supervisor (stack) runs placement only for a run file that
// names a placementHostAddress, and then sets DAPRD_KEEP_PLACEMENT=1 for
// the sidecars it passes the address to, which keeps it.
func withoutPlacement(args []string) []string {
	if os.Getenv("DAPRD_KEEP_PLACEMENT") == "1" {
		return args
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--placement-host-address" || a == "-placement-host-address":
			i++ // skip its value too
		case strings.HasPrefix(a, "--placement-host-address=") || strings.HasPrefix(a, "-placement-host-address="):
		default:
			out = append(out, a)
		}
	}
	return out
}

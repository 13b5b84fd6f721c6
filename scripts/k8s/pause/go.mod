// The pod sandbox's pause program: no registry here serves the usual image.
module github.com/example/dapr-wasi-template/k8s/pause

go 1.26.0

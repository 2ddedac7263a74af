// Top-level code rather than @main: an @main type's main() is the main
// actor's, and its closures then check their executor through Swift
// Concurrency's runtime, which links it and libdispatch into every VMM.
CloudHypervisor.main()

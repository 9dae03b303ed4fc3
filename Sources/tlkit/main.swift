import TLKitCommands

runTLKit()

import SafeTensors

extension Families {
    /// The adapter family a file's grouped keys show: `dora`, `ia3`, `loha`, `lokr` (or `loha+lokr`), `locon`
    /// (a LoRA with convolution modules), or `lora`.
    static func family(of keys: AdapterKeys, file: SafeTensorsFile) -> String {
        if keys.unsupportedVariant == "DoRA" { return "dora" }
        if keys.unsupportedVariant == "IA3" { return "ia3" }
        let kinds = Set(keys.modules.compactMap(kind(of:)))
        if !kinds.isEmpty { return kinds.sorted().joined(separator: "+") }
        let convolution = keys.modules.contains { module in
            module.tensors[.down].flatMap { file.header.tensor(named: $0) }?.shape.count == 4
        }
        return convolution ? "locon" : "lora"
    }

    /// A family module's exact LoRA rank (what `convert` writes) and stored alpha, from the header; nil for
    /// modules of no family or whose shapes do not fit together.
    static func headerFacts(_ module: ModuleKeys, format: AdapterFormat, file: SafeTensorsFile, path: String) -> (rank: Int, alpha: Double?)? {
        let tensors = FamilyTensors(module: module, file: file, path: path, format: format)
        guard let shape = try? shape(tensors) else { return nil }
        return (shape.rank, (try? tensors.alpha()) ?? nil)
    }
}

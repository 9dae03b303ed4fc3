import Catalog
import SafeTensors

/// The searchable facts stored with a catalog entry. A minimal reading of metadata and tensor names;
/// the adapter inspector supplies the full answer.
func catalogFacts(for file: SafeTensorsFile, path: String) -> EntryFacts {
    let metadata = file.metadata
    var facts = EntryFacts()
    facts.base = metadata["ss_base_model_version"]
    facts.method = metadata["tlora.method"]
    facts.minRank = metadata["tlora.min_rank"].flatMap { Int($0) }
    facts.token = metadata["tlora.token"]
    facts.className = metadata["tlora.class"]
    facts.steps = metadata["tlora.steps"].flatMap { Int($0) }
    facts.trigger = metadata["modelspec.trigger_phrase"]

    let downSuffixes = ["lora_down.weight", "lora_A.weight", ".down.weight", "q_layer.weight"]
    var rank: Int?
    var format: String?
    for info in file.tensors {
        guard let suffix = downSuffixes.first(where: { info.name.hasSuffix($0) }), let first = info.shape.first else { continue }
        rank = max(rank ?? 0, first)
        if format == nil {
            switch suffix {
            case "lora_down.weight": format = "kohya"
            case "lora_A.weight": format = "peft"
            case "q_layer.weight": format = "tlora-official"
            default: format = "attn-procs"
            }
        }
    }
    if file.tensors.contains(where: { $0.name.contains(".tlora.") }) { format = "tlkit" }
    facts.format = format
    facts.kind = format == nil ? nil : "lora"
    facts.rank = metadata["tlora.max_rank"].flatMap { Int($0) } ?? rank ?? metadata["ss_network_dim"].flatMap { Int($0) }
    return facts
}

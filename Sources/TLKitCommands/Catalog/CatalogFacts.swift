import Adapters
import Catalog
import SafeTensors

/// The searchable facts stored with a catalog entry, from the same identification `inspect` prints.
func catalogFacts(for file: SafeTensorsFile, path: String) -> EntryFacts {
    var facts = EntryFacts()
    let metadata = file.metadata
    facts.token = metadata["tlora.token"]
    facts.className = metadata["tlora.class"]
    facts.steps = metadata["tlora.steps"].flatMap { Int($0) } ?? metadata["ss_max_train_steps"].flatMap { Int($0) }
    facts.sshsModelHash = metadata["sshs_model_hash"]
    facts.trainingTags = TriggerWords.trainingTags(metadata: metadata)
    facts.triggerWords = TriggerWords.words(trigger: nil, metadata: metadata)
    guard let identity = try? FileIdentifier.identify(file: file, path: path) else { return facts }
    facts.kind = identity.kind.rawValue
    facts.format = identity.format
    facts.base = identity.base
    facts.method = identity.method?.rawValue
    facts.rank = identity.schedule?.maxRank ?? identity.ranks.max()
    facts.minRank = identity.schedule?.minRank
    facts.trigger = identity.trigger
    facts.family = identity.family
    facts.derivative = identity.derivative
    facts.triggerWords = TriggerWords.words(trigger: identity.trigger, metadata: metadata)
    return facts
}

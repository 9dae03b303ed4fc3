import SDXL

/// The checkpoint a conversion computes against (`convert --base`): DoRA modules rescale its weights
/// (each one's ΔW = W' − W, compressed to a LoRA, `DoRA.swift`), and a LyCORIS T-LoRA's frozen part is
/// recomputed from them (`LycorisTLoRA.swift`). One checkpoint, opened once, serves both.
public struct BaseWeights: Sendable {
    public let model: SDXLModel
    public let policy: NonFinitePolicy

    public init(model: SDXLModel, policy: NonFinitePolicy = .refuse) {
        self.model = model
        self.policy = policy
    }

    /// The checkpoint's weight of the layer `module` adapts, checked against the module's shape and the
    /// non-finite policy; `kind` names what needs it in the error (e.g. "a DoRA module").
    func weight(of module: ModuleInfo, for kind: String) throws -> [Float] {
        let (componentName, path) = ModuleNames.split(module.name)
        guard let component = Component(rawValue: componentName), let shape = model.shape(component, path + ".weight") else {
            throw AdapterError("\(module.name): \(kind) needs its base weight, and \(model.path) has no \(path).weight")
        }
        guard shape == module.weightShape else {
            throw AdapterError("\(module.name): adapter shape \(module.weightShape) does not match the checkpoint's \(shape)")
        }
        let w = try model.floats(component, path + ".weight")
        try policy.admit(w, file: model.path, tensor: path + ".weight")
        return w
    }
}

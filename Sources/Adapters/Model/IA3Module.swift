/// Which side of a layer an (IA)³ vector scales: its output rows, or its input channels (LyCORIS'
/// `on_input`, PEFT's `feedforward_modules`).
public enum IA3Axis: String, Sendable, Equatable {
    case output, input
}

/// How a file's (IA)³ vector becomes the scale: the two libraries store different things.
public enum IA3Spelling: String, Sendable, Equatable {
    /// LyCORIS stores v with scale 1 + v (v = 0 changes nothing) and leaves the bias alone.
    case lycoris
    /// PEFT stores the scale l itself (l = 1 changes nothing) and, on the output side, scales the bias too.
    case peft
}

/// An (IA)³ module's layout, known from the file's header: which axis its vector scales and how.
public struct IA3Layout: Sendable, Equatable {
    public var axis: IA3Axis
    public var spelling: IA3Spelling

    public init(axis: IA3Axis, spelling: IA3Spelling) {
        self.axis = axis
        self.spelling = spelling
    }

    /// Whether merging also scales the layer's bias (PEFT's merge does on the output side).
    public var scalesBias: Bool { spelling == .peft && axis == .output }
}

/// An (IA)³ module: W' = W ⊙ s broadcast along one axis, s from the stored vector. ΔW = W' − W needs the
/// base weight W and has the base's rank, so it is not a LoRA; only the commands that have the base weight
/// ask for it (docs/families.md, "(IA)³").
public struct IA3Factors: Sendable, Equatable {
    /// As stored: one entry per output row or per input channel.
    public var vector: [Float]
    public var layout: IA3Layout

    public init(vector: [Float], layout: IA3Layout) {
        self.vector = vector
        self.layout = layout
    }

    /// The scale per output row or input channel, rounded to float32 as both libraries compute it.
    public var scale: [Float] {
        layout.spelling == .lycoris ? vector.map { 1 + $0 } : vector
    }

    /// The message every command that cannot apply (IA)³ gives, naming the module.
    static func refusal(module: String) -> String {
        "module \(module) is an (IA)³ module: it scales the base weight's rows or columns, so its ΔW depends on the base model and is not a LoRA; only `tlkit merge --into CHECKPOINT` applies it (exactly), or `tlkit convert --base CHECKPOINT --rank N` approximates it by a LoRA"
    }
}

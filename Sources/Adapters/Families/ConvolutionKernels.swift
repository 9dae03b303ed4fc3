/// The kernel of each UNet convolution an adapter can adapt, by canonical name. LoHa and LoKr flatten the
/// kernel window into their factors ([r, Cin·kh·kw]), so the file alone cannot tell a 3×3 convolution of
/// C channels from a 1×1 one of 9C or from a linear layer; loaders take the shape from the model's layer,
/// and this table is that layer's kernel (docs/families.md, "Convolutions").
enum ConvolutionKernels {
    /// [kh, kw] for a convolution, nil for a linear layer (or a name the table does not know).
    static func kernel(of canonical: String, base: BaseArchitecture?) -> [Int]? {
        guard canonical.hasPrefix("unet.") else { return nil }  // transformer denoisers and text encoders are linear
        for suffix in [".conv1", ".conv2", "samplers.0.conv", "unet.conv_in", "unet.conv_out"] where canonical.hasSuffix(suffix) {
            return [3, 3]
        }
        if canonical.hasSuffix(".conv_shortcut") { return [1, 1] }
        // SD 1.x projects into and out of its transformers with 1×1 convolutions; SD 2.x and SDXL with Linear.
        if base == .sd1, canonical.hasSuffix(".proj_in") || canonical.hasSuffix(".proj_out") { return [1, 1] }
        return nil
    }

    /// The kernel a family module's ModuleInfo gets: the one its tensors show, else the layer table's;
    /// an error when the two disagree or the flattened width is not a whole number of kernel windows.
    static func resolve(_ family: FamilyShape, canonical: String, base: BaseArchitecture?, path: String, module: String) throws -> [Int] {
        let layer = kernel(of: canonical, base: base)
        if let shown = family.kernel, let layer, shown != layer {
            throw AdapterError("\(path): module \(module): its tensors carry a \(shown[0])×\(shown[1]) kernel, but \(canonical) is a \(layer[0])×\(layer[1]) convolution")
        }
        guard let kernel = family.kernel ?? layer else { return [] }
        let area = kernel.reduce(1, *)
        guard area > 0, family.inFeatures % area == 0 else {
            throw AdapterError("\(path): module \(module): input width \(family.inFeatures) is not a whole number of \(kernel[0])×\(kernel[1]) kernel windows (\(canonical) is a convolution)")
        }
        return kernel
    }
}

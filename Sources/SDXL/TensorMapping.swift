/// How one diffusers tensor is obtained from a tensor in the single-file (SGM/LDM/OpenCLIP) layout.
public struct TensorMapping: Equatable, Sendable {
    public enum Transform: Equatable, Sendable {
        /// Same data and shape.
        case identity
        /// Same data, different shape (LDM VAE attention stores 1×1 conv weights [C, C, 1, 1]).
        case reshape
        /// Part `index` of `count` equal row blocks (OpenCLIP `in_proj_*` stacks q, k, v).
        case rows(index: Int, count: Int)
        /// The 2-D transpose (OpenCLIP `text_projection` is the transpose of diffusers' weight).
        case transpose
    }

    public let diffusersName: String
    public let singleFileName: String
    public let transform: Transform
}

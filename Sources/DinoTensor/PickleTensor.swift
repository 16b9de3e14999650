/// A storage as its persistent id describes it: archive member `data/<key>` holding `count`
/// elements of `dtype`, or `count` bytes when untyped (`dtype` nil, torch >= 2.1 for new dtypes).
struct PickleStorage: Sendable, Equatable {
    var key: String
    var dtype: TorchDType?
    var count: Int
}

/// A tensor as `_rebuild_tensor_v2` / `_v3` describes it: a strided view of a storage.
struct PickleTensor: Sendable {
    var storage: PickleStorage
    var dtype: TorchDType
    /// In elements of `dtype`.
    var offset: Int
    var shape: [Int]
    /// In elements of `dtype`.
    var strides: [Int]
    /// The negative-view bit: the stored values are the negated tensor.
    var negated: Bool
}

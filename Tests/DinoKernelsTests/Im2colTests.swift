import CDinoKernels
import Testing

/// im2col: the run-copying kernel against the element-wise reference, and the reference against
/// the convolution's definition written out in Swift.
@Suite("Kernels: im2col")
struct Im2colTests {
    /// Kernel side, stride and padding: pointwise, the heads' 3x3 with padding 1, strided and
    /// over-padded cases (padding wider than the kernel's reach leaves whole rows of zeros).
    static let geometries: [(k: Int, stride: Int, pad: Int)] = [(1, 1, 0), (3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 3, 2), (3, 1, 4), (4, 3, 3)]

    /// `columns[(i * K + ky) * K + kx, r * W' + ox]` from the definition.
    static func naive(_ image: [Float], channels: Int, height: Int, width: Int, k: Int, stride: Int, pad: Int,
                      firstRow: Int, rows: Int, outWidth: Int) -> [Float] {
        var columns = [Float](repeating: .nan, count: channels * k * k * rows * outWidth)
        for i in 0..<channels {
            for ky in 0..<k {
                for kx in 0..<k {
                    for r in 0..<rows {
                        for ox in 0..<outWidth {
                            let (iy, ix) = ((firstRow + r) * stride - pad + ky, ox * stride - pad + kx)
                            let inside = (0..<height).contains(iy) && (0..<width).contains(ix)
                            columns[((i * k + ky) * k + kx) * rows * outWidth + r * outWidth + ox] = inside ? image[(i * height + iy) * width + ix] : 0
                        }
                    }
                }
            }
        }
        return columns
    }

    @Test("every tap of every band equals the reference, bit for bit", arguments: 0..<geometries.count)
    func fastMatchesReference(geometry: Int) {
        let (k, stride, pad) = Self.geometries[geometry]
        for (channels, height, width) in [(1, 1, 1), (2, 5, 7), (3, 9, 4), (4, 13, 17)] {
            guard width + 2 * pad >= k, height + 2 * pad >= k else { continue }
            let (oh, ow) = ((height + 2 * pad - k) / stride + 1, (width + 2 * pad - k) / stride + 1)
            let image = randomFloats(channels * height * width, seed: UInt64(geometry * 100 + height))
            // The whole map, then bands of 2 rows (the last one short) as the convolution tiles it.
            for band in [oh, 2] {
                for firstRow in Swift.stride(from: 0, to: oh, by: band) {
                    let rows = min(band, oh - firstRow)
                    var fast = [Float](repeating: .nan, count: channels * k * k * rows * ow), ref = fast
                    dino_im2col(image, channels, height, width, k, stride, pad, firstRow, rows, ow, &fast)
                    dino_im2col_ref(image, channels, height, width, k, stride, pad, firstRow, rows, ow, &ref)
                    let label = "I \(channels), \(height)x\(width), K \(k), stride \(stride), pad \(pad), rows \(firstRow)..<\(firstRow + rows)"
                    #expect(fast.map(\.bitPattern) == ref.map(\.bitPattern), "\(label)")
                    let expected = Self.naive(image, channels: channels, height: height, width: width, k: k, stride: stride, pad: pad,
                                              firstRow: firstRow, rows: rows, outWidth: ow)
                    #expect(ref.map(\.bitPattern) == expected.map(\.bitPattern), "\(label)")
                }
            }
        }
    }
}

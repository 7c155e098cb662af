"""Pixel AUROC and PRO accumulated image by image, in memory that does not
grow with the number or size of the images.

Each map value falls in one of BINS bins, spaced evenly in log10 from LOW to
HIGH (a bin's upper edge 1.00084 times its lower; values at or below LOW share
the first bin, above HIGH the last). The bins keep three histograms: defect
pixels, defect-free pixels, and each defect region's pixels weighted by one
over its size (the share of the region each pixel is, the per-region overlap's
unit). Thresholds at the bin edges are points of the exact ROC and PRO curves,
so the binned figures are the exact curves drawn through fewer points: pixels
within one bin count as tied. Within a bin an exact curve rises monotonically
between the two points, so the area it adds differs from the straight line's
by at most half the product of the bin's two steps; `auroc_bound` and
`pro_bound` sum those over the bins (for PRO, the whole product where the
curve is cut at `max_fpr`): the largest possible distance from the exact
figure, which `keras_ae.anomaly.metrics` computes from the whole maps.

Example:

    accumulated = PixelMetrics()
    for maps, masks in chunks:
        accumulated.update(maps, masks)
    accumulated.auroc(), accumulated.pro()
"""

import numpy as np

from keras_ae.anomaly import metrics

BINS = 2**16
LOW, HIGH = 1e-12, 1e12
MAX_FPR = 0.3  # PRO's integration limit, as MVTec AD's


class PixelMetrics:
    """Histograms of map values over defect and defect-free pixels."""

    def __init__(self):
        self.defect = np.zeros(BINS)
        self.normal = np.zeros(BINS)
        self.overlap = np.zeros(BINS)  # each region's pixels, weighted 1 / its size
        self.regions = 0

    @staticmethod
    def bins_of(values):
        """int64 bin index of each of `values`."""
        logs = np.log10(np.maximum(np.asarray(values, np.float64), LOW))
        index = np.floor((logs - np.log10(LOW)) * (BINS / (np.log10(HIGH) - np.log10(LOW))))
        return np.clip(index, 0, BINS - 1).astype(np.int64)

    def update(self, maps, masks):
        """Adds images: `maps` `[n, height, width]` and their boolean ground
        truth `masks` (True = defect; each 8-connected defect a region)."""
        masks = np.asarray(masks, bool)
        bins = self.bins_of(maps)
        defect_bins = bins[masks]
        self.defect += np.bincount(defect_bins, minlength=BINS)
        self.normal += np.bincount(bins[~masks], minlength=BINS)
        if defect_bins.size:
            numbered = metrics.regions(masks)
            sizes = np.bincount(numbered.ravel())
            self.overlap += np.bincount(defect_bins, weights=1.0 / sizes[numbered[masks]],
                                        minlength=BINS)
            self.regions += int(numbered.max())

    def _rates(self):
        """True-positive rate, false-positive rate and mean region overlap at
        each bin edge, the threshold falling from above the highest bin."""
        def rising(counts, total):
            return np.r_[0.0, np.cumsum(counts[::-1])] / max(total, 1)
        return (rising(self.defect, self.defect.sum()), rising(self.normal, self.normal.sum()),
                rising(self.overlap, self.regions))

    def auroc(self):
        """Pixel AUROC (pixels in one bin tie); None without both kinds."""
        if not self.defect.sum() or not self.normal.sum():
            return None
        tpr, fpr, _ = self._rates()
        return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))

    def auroc_bound(self):
        """The most `auroc` can differ from the exact pixel AUROC."""
        return float(np.sum(self.defect * self.normal)
                     / (2 * max(self.defect.sum() * self.normal.sum(), 1)))

    def pro(self, max_fpr=MAX_FPR):
        """The per-region overlap integrated up to `max_fpr` of defect-free
        pixels, divided by it (`metrics.pro`'s definition); None without
        regions or defect-free pixels."""
        if not self.regions or not self.normal.sum():
            return None
        _, fpr, overlap = self._rates()
        kept = fpr <= max_fpr
        end = np.interp(max_fpr, fpr, overlap)
        fpr, overlap = np.r_[fpr[kept], max_fpr], np.r_[overlap[kept], end]
        return float(np.sum(np.diff(fpr) * (overlap[1:] + overlap[:-1]) / 2) / max_fpr)

    def pro_bound(self, max_fpr=MAX_FPR):
        """The most `pro` can differ from the exact figure."""
        _, fpr, overlap = self._rates()
        below = fpr[:-1] < max_fpr
        steps = np.diff(np.minimum(fpr, max_fpr)) * np.diff(overlap)
        last = np.flatnonzero(below)[-1] if below.any() else -1
        halves = np.where(np.arange(len(steps)) == last, 1.0, 0.5)
        return float(np.sum((steps * halves)[below]) / max_fpr)

    def quantile(self, q):
        """The upper edge of the bin holding the `q` quantile of all pixels."""
        counts = self.defect + self.normal
        index = np.searchsorted(np.cumsum(counts), q * counts.sum())
        exponent = np.log10(LOW) + (min(index, BINS - 1) + 1) * (
            (np.log10(HIGH) - np.log10(LOW)) / BINS)
        return float(10 ** exponent)

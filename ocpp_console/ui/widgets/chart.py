"""Time-series charts (plotext through textual-plotext: axes and labels in a terminal)."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

Series = tuple[str, Sequence[float], Sequence[float]]


class TimeChart(PlotextPlot):
    """Line chart of series against minutes: relative to now (negative) or to a start (positive)."""

    DEFAULT_CSS = """
    TimeChart { height: 14; min-height: 8; }
    """

    def __init__(
        self,
        title: str,
        y_label: str = "",
        *,
        x_label: str = "minutes ago",
        x_window: float | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._title = title
        self._y_label = y_label
        self._x_label = x_label
        self._x_window = x_window
        self._series: list[Series] = []

    def set_series(self, series: list[Series]) -> None:
        if series == self._series:
            return
        self._series = [(label, list(xs), list(ys)) for label, xs, ys in series]
        self.replot()

    def on_mount(self) -> None:
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self._title)
        plt.xlabel(self._x_label)
        ys_all = [y for _, _, ys in self._series for y in ys]
        top = max(ys_all) if ys_all else 0.0
        plt.ylim(0, top * 1.15 if top > 0 else 1)
        if self._x_window is not None:
            plt.xlim(-self._x_window, 0)
        for label, xs, ys in self._series:
            if xs:
                plt.plot(xs, ys, label=label if len(self._series) > 1 else None, marker="hd")
        self.refresh()

# make bench: ns per key by method and format, from bench.json.dat
# gnuplot -e "dat='X.dat'; out='bench.png'" bench/plot.gp
set terminal pngcairo size 1280,560 font ",10" noenhanced
set output out
set title "bkey unpack over 1024-key nodes (ns per key, lower is better; 0 = n/a)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set ylabel "ns per key"
set grid ytics
set xtics rotate by -25 offset -1,0
# the legend beside the plot, where no bar is; labels printed literally
# (noenhanced: "w:extents_inodes" keeps its underscore)
set key outside right top vertical
# nine series: the ninth gets a colour of its own (the default cycle has eight)
plot dat using 2:xtic(1) title "walk", \
     '' using 3 title "generic_c", \
     '' using 4 title "byte_aligned_c", \
     '' using 5 title "x86_loop (table walk)", \
     '' using 10 title "x86_loop_u64s", \
     '' using 6 title "bpf_generic", \
     '' using 7 title "bpf_generated (table walk)", \
     '' using 8 title "bpf_generated_u64s", \
     '' using 9 title "bpf_shape (table walk)" lc rgb "#777777"
